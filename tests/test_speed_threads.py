"""trainer.num_threads=auto: the rule as a function, the work it measures, and a run that uses it."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from cnnlab import parallelism
from cnnlab.errors import ConfigError
from cnnlab.parallelism import SMALL_STEP_MACS, choose_threads
from cnnlab.train import threads as threads_module
from cnnlab.train.threads import apply_threads, forward_macs
from conftest import compose_config


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


BIG = SMALL_STEP_MACS * 10


@pytest.mark.parametrize("macs, cores, load, limit, threads", [
    (SMALL_STEP_MACS / 10, 2, 0.0, None, 1),  # a small model: one thread even on an idle machine
    (SMALL_STEP_MACS / 10, 16, 0.0, None, 1),
    (BIG, 2, 0.0, None, 2),                   # a big one on an idle machine: every core
    (BIG, 2, None, None, 2),                  # load unknown: every core
    (BIG, 2, 1.0, None, 1),                   # another process holds a core: the idle one only
    (BIG, 2, 0.4, None, 2),                   # a little background work leaves both
    (BIG, 2, 9.0, None, 1),                   # a loaded machine: one
    (BIG, 16, 4.0, None, 12),
    (BIG, 16, 0.0, 4, 4),                     # OMP_NUM_THREADS (joblib: cores // workers) caps it
    (BIG, 2, 0.0, 1, 1),
])
def test_choose_threads(macs, cores, load, limit, threads):
    assert choose_threads(macs, cores, load, limit) == threads


def test_forward_macs_counts_convolutions_and_linear_layers_and_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    macs = forward_macs(model, (1, 8, 8))
    assert macs == 64 * 4 * 9 + 64 * 8 * (4 // 2) * 9 + 512 * 10
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_course_models_are_small_and_the_fast_preset_is_not():
    from cnnlab.models import build_model

    def step_macs(overrides):
        cfg = compose_config(overrides)
        side = cfg.dataset.image_size or (28 if cfg.dataset.name != "digits" else 8)
        shape = (1, side, side)
        return forward_macs(build_model(cfg.model, shape, 10), shape) * cfg.dataset.batch_size

    assert step_macs(["experiment=optimizers"]) < SMALL_STEP_MACS
    assert step_macs(["experiment=init_activation"]) < SMALL_STEP_MACS
    assert step_macs([]) < SMALL_STEP_MACS  # the default run: the same threads, whatever the load
    assert step_macs(["experiment=overfitting"]) > SMALL_STEP_MACS  # seed 000's 3.3M-param CNN at 128x128
    assert step_macs(["experiment=fast", "dataset=fashion_mnist"]) > SMALL_STEP_MACS


def test_apply_threads_reads_the_machine_and_obeys_omp_num_threads(monkeypatch):
    big = nn.Sequential(nn.Flatten(), nn.Linear(64, 4096), nn.Linear(4096, 4096))  # ~17M MACs per image
    cpu = torch.device("cpu")
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "machine_load", lambda: 0.0)
    assert apply_threads("auto", big, (1, 8, 8), 128, cpu) == 2
    assert apply_threads("auto", big, (1, 8, 8), 1, cpu) == 1  # one image per step is small
    monkeypatch.setattr(threads_module, "machine_load", lambda: 1.0)
    assert apply_threads("auto", big, (1, 8, 8), 128, cpu) == 1
    monkeypatch.setattr(threads_module, "machine_load", lambda: 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert apply_threads("auto", big, (1, 8, 8), 128, cpu) == 1
    assert apply_threads(2, big, (1, 8, 8), 128, cpu) == 2  # a number is used as given


def test_apply_threads_reads_the_machine_only_where_the_load_could_change_the_count(monkeypatch):
    """Reading the load samples /proc for ~20 ms before every job's first step: a small model, one
    core, or OMP_NUM_THREADS=1 (a sweep's worker) gets one thread whatever it says."""
    big = nn.Sequential(nn.Flatten(), nn.Linear(64, 4096), nn.Linear(4096, 4096))
    small = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    cpu = torch.device("cpu")
    reads = []
    monkeypatch.setattr(threads_module, "machine_load", lambda: reads.append(1) or 0.0)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert apply_threads("auto", small, (1, 8, 8), 128, cpu) == 1 and reads == []
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert apply_threads("auto", big, (1, 8, 8), 128, cpu) == 1 and reads == []
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 1)
    assert apply_threads("auto", big, (1, 8, 8), 128, cpu) == 1 and reads == []
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    assert apply_threads("auto", big, (1, 8, 8), 128, cpu) == 2 and reads == [1]


def test_machine_load_counts_other_runnable_threads():
    load = parallelism.machine_load(samples=2, interval=0.0)
    assert load is not None and load >= 0


@pytest.mark.parametrize("value, ok", [("auto", True), ("1", True), ("4", True), ("null", True),
                                       ("0", False), ("two", False), ("true", False), ("-1", False)])
def test_num_threads_accepts_auto_a_positive_count_or_null(value, ok):
    if ok:
        compose_config([f"trainer.num_threads={value}"])
    else:
        with pytest.raises(ConfigError, match="trainer.num_threads must be auto, a positive integer or null"):
            compose_config([f"trainer.num_threads={value}"])


def test_auto_is_the_default():
    assert compose_config([]).trainer.num_threads == "auto"


def test_a_small_model_on_auto_trains_exactly_as_on_one_thread(train_run, tmp_path):
    job = ["model=mlp5x100", "dataset.train_size=200", "trainer.max_epochs=2"]
    auto, _ = train_run(job, tmp_path / "auto")
    one, _ = train_run(job + ["trainer.num_threads=1"], tmp_path / "one")
    assert auto["num_threads"] == one["num_threads"] == 1
    assert auto["history"] == [{**row, "seconds": a["seconds"]} for row, a in zip(one["history"], auto["history"])]
    assert (auto["test_acc"], auto["test_loss"]) == (one["test_acc"], one["test_loss"])


def test_a_resumed_auto_run_keeps_the_thread_count_it_started_with(train_run, tmp_path, monkeypatch):
    # auto decides from the load of the moment; here the machine "gets busier" between the two runs
    common = ["model=lecture_cnn", "dataset.train_size=256", "trainer.num_threads=auto"]
    monkeypatch.setattr(threads_module, "choose_threads", lambda *args: 2)
    monkeypatch.setattr(threads_module, "forward_macs", lambda *args: 10 * SMALL_STEP_MACS)
    first, run_dir = train_run([*common, "trainer.max_epochs=1"], tmp_path / "run")
    assert first["num_threads"] == 2
    monkeypatch.setattr(threads_module, "choose_threads", lambda *args: 1)
    resumed, _ = train_run([*common, "trainer.max_epochs=2", "resume=true"], run_dir)
    assert resumed["num_threads"] == 2  # as before the interruption, not auto's choice of now
    fixed, _ = train_run([*common[:-1], "trainer.num_threads=1", "trainer.max_epochs=3", "resume=true"], run_dir)
    assert fixed["num_threads"] == 1  # a count the user sets is honoured
    fresh, _ = train_run([*common, "trainer.max_epochs=1"], tmp_path / "fresh")
    assert fresh["num_threads"] == 1
