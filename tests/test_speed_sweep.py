"""Sweeps as parallel single-thread workers (hydra/launcher=auto): how many, chosen for the presets,
and the same results per job as one job after another in one process."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cnnlab import parallelism
from conftest import CONF, FAST, REPO, run_cli

sys.path.insert(0, str(REPO / "scripts"))
from bench_sweep import compare_sweeps, differences_hint, job_problems  # noqa: E402

SWEEPS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")
                if OmegaConf.select(OmegaConf.load(p), "hydra.sweeper.params"))
GB = 1 << 30


@pytest.mark.parametrize("jobs, cores, memory, workers", [
    (15, 2, 24 * GB, 2),     # the 2-core laptop: both cores
    (15, 16, 64 * GB, 15),   # never more workers than jobs
    (4, 16, 64 * GB, 4),
    (15, 16, 3 * GB, 3),     # no more than fit in free memory
    (15, 16, GB // 2, 1),    # at least one
    (None, 8, None, 8),      # another sweeper: jobs unknown, one per core
    (1, 2, None, 1),
])
def test_sweep_workers_one_per_core_capped_by_jobs_and_memory(jobs, cores, memory, workers):
    assert parallelism.sweep_workers(jobs, cores, memory) == workers


@pytest.mark.parametrize("gpus, workers", [(0, 15), (1, parallelism.WORKERS_PER_GPU),
                                           (2, 2 * parallelism.WORKERS_PER_GPU), (8, 15)])
def test_sweep_workers_share_a_gpu_only_a_few_at_a_time(gpus, workers):
    assert parallelism.sweep_workers(15, 16, 64 * GB, gpus=gpus) == workers


@pytest.mark.parametrize("visible, gpus", [("", 0), ("-1", 0), ("0", 1), ("0,1", 2), ("2, 3, 5", 3)])
def test_visible_gpus_read_cuda_visible_devices(visible, gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert parallelism.visible_gpus() == gpus


def test_a_cpu_sweep_is_not_capped_by_the_gpus_of_the_machine(monkeypatch):
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 64)
    monkeypatch.setattr(parallelism, "available_memory", lambda: 256 * GB)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert _hydra_config(["experiment=optimizers"]).hydra.launcher.n_jobs == parallelism.WORKERS_PER_GPU
    assert _hydra_config(["experiment=optimizers", "device=cpu"]).hydra.launcher.n_jobs == 40  # 5 optimizers x 8 seeds, all at once on 64 cores


def test_usable_cores_follow_the_affinity_mask():
    assert parallelism.usable_cores() == len(__import__("os").sched_getaffinity(0))


@pytest.mark.parametrize("params, task, jobs", [
    ({"optim": "sgd,momentum,adagrad,rmsprop,adam", "seed": "0,1,2"}, ["experiment=optimizers"], 15),
    ({"optim": "sgd,adam", "seed": "0,1,2"}, ["seed=0"], 2),                # the command line wins
    ({"seed": "0,1,2"}, ["model.dropout=0,0.5", "trainer.max_epochs=2"], 6),
    ({}, ["seed=range(4)"], 4),
    ({}, ["optim=adam"], 1),
])
def test_count_sweep_jobs_as_the_basic_sweeper_expands_them(params, task, jobs):
    assert parallelism.count_sweep_jobs(params, task) == jobs


def _hydra_config(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("name", SWEEPS)
def test_every_course_preset_sweeps_with_one_worker_per_core_capped_by_its_jobs(name, monkeypatch):
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 64)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(parallelism, "available_memory", lambda: 256 * GB)
    cfg = _hydra_config([f"experiment={name}"])
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    params = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").hydra.sweeper.params
    jobs = 1
    for values in params.values():
        jobs *= len(str(values).split(","))
    assert cfg.hydra.launcher.n_jobs == jobs  # 64 cores: one worker per job
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)
    assert _hydra_config([f"experiment={name}"]).hydra.launcher.n_jobs == 2


def test_a_preset_runs_one_job_after_another_when_asked():
    cfg = _hydra_config(["experiment=optimizers", "hydra/launcher=basic"])
    assert cfg.hydra.launcher._target_.endswith("BasicLauncher")


def test_a_sweep_through_the_auto_launcher_gives_each_job_the_basic_launchers_results(tmp_path):
    """Two tiny jobs in two single-thread worker processes, then one after another in one process
    with one thread each: every job's folder complete, every metric and epoch the same."""
    sweep = ["-m", "optim=sgd,adam", "hydra/launcher=auto", "model=mlp5x100", "dataset.train_size=200",
             "trainer.max_epochs=2", *FAST]
    parallel = run_cli([*sweep, f"hydra.sweep.dir={tmp_path / 'auto'}"], tmp_path)
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    workers = min(2, parallelism.usable_cores())
    assert f"Joblib.Parallel(n_jobs={workers}" in parallel.stdout + parallel.stderr
    basic = run_cli([*sweep, "hydra/launcher=basic", "trainer.num_threads=1",
                     f"hydra.sweep.dir={tmp_path / 'basic'}"], tmp_path)
    assert basic.returncode == 0, basic.stderr[-3000:]
    for job in (tmp_path / "auto").iterdir():
        if job.is_dir() and not job.name.startswith("."):  # .cnnlab/: the sweep's own state
            assert job_problems(job) == []
            assert json.loads((job / "results.json").read_text())["num_threads"] == 1
    problems, largest = compare_sweeps(tmp_path / "basic", tmp_path / "auto", tolerance=1e-6)
    assert problems == [] and largest <= 1e-6
    jobs = sorted(p.name for p in (tmp_path / "auto").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["optim=adam", "optim=sgd"]


def test_compare_sweeps_reports_a_missing_file_and_a_different_metric(tmp_path):
    for way, acc in (("old", 0.5), ("new", 0.6)):
        job = tmp_path / way / "optim=sgd"
        (job / "checkpoints").mkdir(parents=True)
        (job / ".hydra").mkdir()
        for part in ("checkpoints/best.pt", "checkpoints/last.pt", ".hydra/config.yaml", "train.log",
                     "events.out.tfevents.1"):
            (job / part).write_text("x")
        (job / "results.json").write_text(json.dumps({"status": "completed", "test_acc": acc, "history": []}))
    assert compare_sweeps(tmp_path / "old", tmp_path / "new", tolerance=0.2)[0] == []
    (tmp_path / "new" / "optim=sgd" / "checkpoints" / "best.pt").unlink()
    problems, largest = compare_sweeps(tmp_path / "old", tmp_path / "new", tolerance=0.05)
    assert "optim=sgd: no checkpoints/best.pt" in problems
    assert any(p.startswith("optim=sgd: test_acc differs by 0.1") for p in problems)
    assert largest == pytest.approx(0.1)


def test_bench_sweep_runs_the_old_way_on_the_basic_launcher_and_the_new_way_as_the_preset_says(tmp_path):
    from bench_sweep import sweep_command

    old = sweep_command("optimizers", "old", tmp_path, ["trainer.max_epochs=2"], "null")
    new = sweep_command("optimizers", "new", tmp_path, ["trainer.max_epochs=2"], "null")
    assert old[-4:] == ["hydra/launcher=basic", "trainer.num_threads=null", "trainer.checkpoint_every_s=0",
                        "trainer.keep_freed_memory=false"]
    assert new[new.index("-m", 2):] == ["-m", "experiment=optimizers", f"hydra.sweep.dir={tmp_path}",
                                        "trainer.max_epochs=2"]


WORKER_GC = """
import gc, sys
import cnnlab.cli
sys.argv = ["cnnlab", "-m", "optim=sgd,adam", "model=mlp5x100", "dataset.train_size=200", "trainer.max_epochs=1",
            "hydra.sweep.dir=SWEEP", *FAST, *LAUNCHER]
try:
    cnnlab.cli.main()
except SystemExit as exc:
    assert not exc.code, exc.code
frozen = gc.get_freeze_count()
gc.collect()
print("frozen", frozen, "left", len(gc.get_objects()))
"""


@pytest.mark.parametrize("launcher, freezes", [(["hydra/launcher=auto", "hydra.launcher.n_jobs=1"], True),
                                               (["hydra/launcher=basic"], False)])
def test_a_local_sweeps_worker_freezes_what_outlives_its_first_job(tmp_path, launcher, freezes):
    """joblib's workers collect after every job (src/cnnlab/worker_gc.py): after the first, the
    collector walks only what later jobs made. One worker runs its jobs in the launching process, so
    the process after the sweep is the worker; the basic launcher's process is left alone."""
    code = (WORKER_GC.replace("SWEEP", str(tmp_path / "sweep")).replace("*FAST", ", ".join(map(repr, FAST)))
            .replace("*LAUNCHER", ", ".join(map(repr, launcher))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    frozen, left = (int(word) for word in out.stdout.split()[-3::2])
    if freezes:
        assert frozen > 100_000 and left < frozen / 10  # torch and the rest, out of the collector's walks
    else:
        assert frozen == 0


def test_bench_sweep_explains_differences_that_come_from_the_thread_count():
    differing = ["optim=rmsprop,seed=0: test_loss differs by 0.112 (> 0.02)"]
    assert "--old-threads 1" in differences_hint("null", differing)
    assert differences_hint("1", differing) is None  # both on one thread: a difference is a real problem
    assert differences_hint("null", []) is None
