"""Whole training jobs, small: outputs, determinism, regularizers, early stopping, resume."""
import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.train.checkpoint import load_checkpoint

QUICK = ["trainer.max_epochs=2"]


def test_default_run_writes_every_output(train_run):
    results, run_dir = train_run(QUICK)
    for key in ("test_acc", "test_loss", "best_val_acc", "best_epoch", "epochs", "params", "trainable_params",
                "train_seconds", "images_per_s", "test_top5_acc"):
        assert results[key] is not None, key
    assert results["epochs"] == 2 and results["params"] == results["trainable_params"] > 0
    assert json.loads((run_dir / "results.json").read_text())["test_acc"] == results["test_acc"]
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(run_dir / "checkpoints" / name)
        assert state["config"]["model"]["name"] == "lecture_cnn" and state["classes"][0] == "0"
    events = EventAccumulator(str(run_dir)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "train/loss_step"} <= tags
    assert len(events.Scalars("val/acc")) == 2
    assert len(events.Scalars("train/loss_step")) > 2  # one point per step


def test_default_recipe_learns_digits(train_run):
    results, _ = train_run([])  # the README's first run, as configured
    assert results["test_acc"] >= 0.95


def test_same_seed_same_result_on_cpu(train_run, tmp_path):
    a, _ = train_run(QUICK + ["seed=7"], tmp_path / "a")
    b, _ = train_run(QUICK + ["seed=7"], tmp_path / "b")
    c, _ = train_run(QUICK + ["seed=8"], tmp_path / "c")
    assert [r["val/loss"] for r in a["history"]] == [r["val/loss"] for r in b["history"]]
    assert a["test_acc"] == b["test_acc"]
    wa = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [r["val/loss"] for r in a["history"]] != [r["val/loss"] for r in c["history"]]


def test_l1_and_l2_penalties_shrink_the_weights(train_run, tmp_path):
    def weight_norm(run_dir):
        state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
        return sum(v.abs().sum().item() for v in state.values() if v.dim() > 1)

    _, plain = train_run(QUICK, tmp_path / "plain")
    _, l2 = train_run(QUICK + ["loss.l2=0.05"], tmp_path / "l2")
    _, l1 = train_run(QUICK + ["loss.l1=0.001"], tmp_path / "l1")
    assert weight_norm(l2) < weight_norm(plain) and weight_norm(l1) < weight_norm(plain)


def test_early_stopping_stops_and_restores_the_best_weights(train_run):
    # lr far too high for SGD without momentum: val loss stops improving quickly
    results, run_dir = train_run(["trainer.max_epochs=30", "trainer.early_stopping.patience=1",
                                  "trainer.early_stopping.monitor=val/loss", "optim=sgd", "optim.lr=0.5"])
    assert results["stopped_early"] and results["epochs"] < 30
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["tracker"]["best_epoch"] == results["epochs"] - 1


@pytest.mark.parametrize("sched", ["step", "cosine", "onecycle", "plateau"])
def test_every_schedule_trains_end_to_end(train_run, sched):
    step_size = ["sched.step_size=1"] if sched == "step" else []  # a key of step only: refused by the others
    results, _ = train_run(["trainer.max_epochs=2", f"sched={sched}", *step_size])
    lrs = [row["lr"] for row in results["history"]]
    assert lrs[0] > 0 and (lrs[1] < lrs[0] or sched == "plateau")
    assert results["test_acc"] > 0.5


def test_augmentation_trains(train_run):
    results, _ = train_run(["trainer.max_epochs=1", "dataset.augment.crop=1", "dataset.augment.flip=true"])
    assert 0 <= results["test_acc"] <= 1


def test_train_size_limits_the_training_set(train_run):
    results, _ = train_run(["trainer.max_epochs=1", "dataset.train_size=110"])
    assert results["images_per_s"] > 0 and results["history"][0]["train/acc"] is not None


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(train_run, tmp_path):
    full, _ = train_run(["trainer.max_epochs=3"], tmp_path / "full")
    train_run(["trainer.max_epochs=2"], tmp_path / "split")
    resumed, _ = train_run(["trainer.max_epochs=3", "resume=true"], tmp_path / "split")
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_acc"] == full["test_acc"] and resumed["epochs"] == 3


def test_bf16_autocast_path_trains(train_run):
    results, _ = train_run(["trainer.max_epochs=3", "trainer.precision=bf16"])
    assert results["test_acc"] > 0.8


def test_compile_path_trains(train_run, monkeypatch):
    # The run's torch.compile call, traced by dynamo but lowered with aot_eager: inductor's C++
    # build would take a minute on 2 cores and tests the compiler, not cnnlab.
    compiled = []
    real_compile = torch.compile

    def compile_quickly(model, **kwargs):
        compiled.append(model)
        return real_compile(model, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", compile_quickly)
    results, _ = train_run(["trainer.max_epochs=3", "trainer.compile=true"])
    assert compiled and results["test_acc"] > 0.8


def test_channels_last_is_the_default_for_conv_nets_and_computes_the_same(train_run, tmp_path):
    from cnnlab.train.runtime import use_channels_last

    assert use_channels_last("auto", "cnn") and not use_channels_last("auto", "mlp")
    assert not use_channels_last("false", "cnn")
    nhwc, _ = train_run(["trainer.max_epochs=2"], run_dir=tmp_path / "nhwc")
    nchw, _ = train_run(["trainer.max_epochs=2", "trainer.channels_last=false"], run_dir=tmp_path / "nchw")
    # the same arithmetic in another memory layout: equal up to the order of float sums
    for a, b in zip(nhwc["history"], nchw["history"]):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-3)
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-3)
