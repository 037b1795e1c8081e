"""TensorBoard's writer and train_batch.png are made on a thread while the first epoch trains."""
import threading
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.errors import TrainingError
from cnnlab.train.writer_thread import WriterThread


class _Writer:
    def __init__(self):
        self.calls, self.closed = [], False

    def add_scalar(self, *args):
        self.calls.append(args)

    def close(self):
        self.closed = True


def test_calls_wait_for_the_writer_and_reach_it():
    opened = threading.Event()

    def slow_open():
        opened.wait(5)
        return _Writer()

    writer = WriterThread(slow_open, tasks=[lambda w: w.add_scalar("task", 1.0, 0)])
    opened.set()
    writer.add_scalar("train/loss", 0.5, 1)  # waits for the thread, then goes to the real writer
    real = writer.ready()
    assert real.calls == [("task", 1.0, 0), ("train/loss", 0.5, 1)]
    writer.close()
    assert real.closed


def test_an_error_on_the_thread_is_raised_at_the_first_call_and_close_does_not_raise(caplog):
    def failing_task(_writer):
        raise TrainingError("could not write train_batch.png: the disk is full.")

    writer = WriterThread(_Writer, tasks=[failing_task])
    with pytest.raises(TrainingError, match="disk is full"):
        writer.add_scalar("train/loss", 0.5, 1)
    writer.close()  # in the run's `finally`: a second error there would hide the first

    unseen = WriterThread(_Writer, tasks=[failing_task])
    unseen.close()  # never touched (a run stopped in its first epoch): logged, not raised
    assert "opened, then its thread failed: could not write train_batch.png" in caplog.text


def test_training_starts_before_the_writer_opens_and_everything_is_logged(train_run, tmp_path, monkeypatch):
    import cnnlab.run as run

    events, build, open_writer = [], run.build_run_model, run._open_writer

    def slow_open(run_dir):
        time.sleep(0.5)  # longer than the first step: the step must not wait for it
        events.append("writer open")
        return open_writer(run_dir)

    def hooked(*args, **kwargs):
        model = build(*args, **kwargs)
        def first_step(module, inputs):  # a training forward pass, not the thread count's probe
            if module.training and torch.is_grad_enabled() and "step" not in events:
                events.append("step")

        model.register_forward_pre_hook(first_step)
        return model

    monkeypatch.setattr(run, "_open_writer", slow_open)
    monkeypatch.setattr(run, "build_run_model", hooked)
    results, run_dir = train_run(["trainer.max_epochs=2", "trainer.diagnostics=true"])
    assert events[:2] == ["step", "writer open"]
    tags = EventAccumulator(str(run_dir)).Reload().Tags()
    assert "data/train_batch" in tags["images"] and {"train/loss", "val/acc", "train/loss_step"} <= set(tags["scalars"])
    assert (run_dir / "train_batch.png").exists() and results["test_acc"] > 0


def test_a_picture_that_cannot_be_written_stops_the_run_with_its_message(train_run, monkeypatch):
    import cnnlab.data.preview as preview

    def full_disk(*args, **kwargs):
        raise TrainingError("could not write train_batch.png: no space left on the device. Free space or "
                            "choose another hydra.run.dir.")

    monkeypatch.setattr(preview, "_save_picture", full_disk)
    with pytest.raises(TrainingError, match="no space left"):
        train_run(["trainer.max_epochs=1", "trainer.diagnostics=true"])
