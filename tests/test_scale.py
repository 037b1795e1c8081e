"""Scale: one folder per run, DDP with torchrun on CPU (gloo), joblib sweeps, Optuna search."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, run_cli
from cnnlab.naming import _claim

ONE_EPOCH = FAST + ["trainer.max_epochs=1", "trainer.diagnostics=false", "trainer.num_threads=1"]


def _run_folders(root: Path) -> list:
    return sorted(p.parent for p in root.glob("outputs/*/*/.hydra"))


def test_a_taken_run_folder_gets_a_suffix(tmp_path):
    base = str(tmp_path / "outputs" / "2026-01-01" / "12-00-00")
    assert _claim(base) == base
    assert _claim(base) == base + "-1" and _claim(base) == base + "-2"


@pytest.mark.slow
def test_two_runs_started_together_get_their_own_folders(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-m", "cnnlab", *ONE_EPOCH], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    folders = _run_folders(tmp_path)
    assert len(folders) == 2
    for folder in folders:
        assert json.loads((folder / "results.json").read_text())["status"] == "completed"
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1


def _torchrun(args: list, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "cnnlab", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process_with_the_same_global_batch(train_run, tmp_path):
    args = ONE_EPOCH + ["trainer.max_epochs=2"]
    done = _torchrun(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    folders = _run_folders(tmp_path)
    assert len(folders) == 1  # rank 1 used rank 0's folder and made none of its own
    run_dir = folders[0]
    assert len(list(tmp_path.rglob("results.json"))) == 1
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert done.stdout.count("Epoch   2/2") == 1  # only rank 0 prints
    ddp = json.loads((run_dir / "results.json").read_text())
    single, _ = train_run(args, tmp_path / "single")
    # the same images in every step, split over two processes: equal up to float summation order
    assert abs(ddp["test_acc"] - single["test_acc"]) <= 0.02
    assert abs(ddp["final_train_loss"] - single["final_train_loss"]) <= 0.02
    assert ddp["history"][-1]["epoch"] == 2


@pytest.mark.slow
def test_joblib_runs_two_jobs_at_once_each_in_its_own_complete_folder(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    done = run_cli(["-m", "hydra/launcher=local", "hydra.launcher.n_jobs=2", "optim=sgd,adam",
                    f"hydra.sweep.dir={sweep}", *ONE_EPOCH], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))  # .cnnlab: the sweep's state
    assert [p.name for p in jobs] == ["optim=adam", "optim=sgd"]
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        assert results["status"] == "completed" and results["optim"] == job.name.split("=")[1]
        assert (job / "checkpoints" / "last.pt").is_file() and (job / ".hydra" / "config.yaml").is_file()
        events = list(job.glob("events.out.tfevents.*"))
        assert len(events) == 1  # one writer per folder
        assert len(EventAccumulator(str(job)).Reload().Scalars("val/acc")) == 1


@pytest.mark.slow
def test_optuna_search_maximises_the_best_validation_accuracy(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    done = run_cli(["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}",
                    *ONE_EPOCH], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert len(trials) == 2
    assert all("optim.lr=" in " ".join(t["overrides"]) for t in trials)
    best = (sweep / "optimization_results.yaml").read_text()
    assert f"best_value: {max(t['best_val_acc'] for t in trials)}" in best


def test_the_slurm_preset_requeues_and_takes_partition_gpus_and_time():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                 "hydra.launcher.gpus_per_node=4", "hydra.launcher.timeout_min=60"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.max_num_timeout > 0
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 4, 60)
