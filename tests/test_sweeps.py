"""Sweeps that finish, fail loudly and pick up where they stopped: exit codes and summaries read from
the jobs' records under every launcher, fail_fast, Optuna with failing trials and a stored study,
resuming a killed sweep, one GPU per parallel job, pasteable commands, SIGTERM to a parallel sweep."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import FAST, run_cli
from cnnlab import sweep
from cnnlab.commands import override_arg
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.faults import resume_command

QUICK = FAST[:-1] + ["device=auto", "trainer.num_threads=1"]  # auto: the GPU stand-in may assign one
CPU = FAST + ["trainer.num_threads=1"]
DIVERGE = ["optim=sgd", "optim.lr=0.01,5", "trainer.max_epochs=1"]  # lr 5: NaN at step 10


def _summary(folder: Path) -> dict:
    return json.loads((folder / "sweep_summary.json").read_text())


def _epochs_logged(job: Path) -> int:
    return sum(" Epoch " in f" {line}" for line in (job / "train.log").read_text().splitlines())


@pytest.mark.parametrize("launcher", ["basic", "local", "submitit_local"])
def test_a_failed_job_makes_the_sweep_exit_1_and_is_summarized(tmp_path, launcher):
    folder = tmp_path / "sweep"
    extra = [] if launcher == "basic" else [f"hydra/launcher={launcher}"]
    if launcher == "submitit_local":
        extra += ["hydra.launcher.timeout_min=5", "hydra.launcher.gpus_per_node=0"]
    proc = run_cli(["-m", *extra, *DIVERGE, *QUICK, f"hydra.sweep.dir={folder}"], tmp_path,
                   env={"CNNLAB_TEST_GPU_COUNT": "2"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    summary = _summary(folder)
    assert (summary["jobs"], summary["completed"], summary["failed"], summary["exit_code"]) == (2, 1, 1, 1)
    failure, = summary["failures"]
    assert failure["folder"] == "optim.lr=5" and "optim.lr=5" in failure["overrides"]
    assert failure["error"].startswith("the training loss became nan")
    assert "Sweep: 2 jobs: 1 completed, 1 failed; exit code 1" in proc.stderr
    assert "Continue the sweep with: " in proc.stderr and "resume=true" in proc.stderr
    # the failing job's own train.log says why, at the time it failed
    assert "cnnlab: error: the training loss became nan" in (folder / "optim.lr=5" / "train.log").read_text()
    if launcher == "local":
        # side-by-side jobs label their lines, and each took a GPU of its own
        assert "[optim.lr=0.01] Epoch   1/1" in proc.stdout
        gpus = {job: (folder / job / "train.log").read_text() for job in ("optim.lr=0.01", "optim.lr=5")}
        taken = {job: next(f"cuda:{k}" for k in (0, 1) if f"trains on cuda:{k} " in text and "its own" in text)
                 for job, text in gpus.items()}
        assert sorted(taken.values()) == ["cuda:0", "cuda:1"]
    if launcher == "basic":
        # sweep.rerun=failed: the completed job is skipped, the failed one runs again (and fails again)
        args = ["-m", *DIVERGE, *QUICK, f"hydra.sweep.dir={folder}", "resume=true", "sweep.rerun=failed"]
        again = run_cli(args, tmp_path)
        assert again.returncode == 1, again.stderr[-2000:]
        summary = _summary(folder)
        assert (summary["skipped"], summary["failed"], summary["completed"]) == (1, 1, 0)
        assert _epochs_logged(folder / "optim.lr=0.01") == 1  # not trained again


def test_fail_fast_stops_the_sweep_at_the_first_failure(tmp_path):
    folder = tmp_path / "sweep"
    args = ["-m", "optim=sgd", "optim.lr=5,0.01,0.02", "trainer.max_epochs=1",
            *QUICK, f"hydra.sweep.dir={folder}", "sweep.fail_fast=true"]
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert sweep.job_dirs(folder) == [folder / "optim.lr=5"]  # nothing after the failure started
    summary = _summary(folder)
    assert summary["stopped"]["reason"] == "fail_fast" and summary["failed"] == 1
    assert "stopped at the first failure (sweep.fail_fast=true)" in proc.stderr


OPTUNA = ["hparams_search=optuna", "optim=sgd", "trainer.max_epochs=1", *QUICK]


def test_optuna_records_diverging_trials_as_failed_and_searches_on(tmp_path):
    folder = tmp_path / "search"
    # SGD at lr 50 makes the loss NaN; the seeded TPE sampler draws it in some of the four trials
    args = ["-m", *OPTUNA, "hydra.sweeper.n_trials=4", "hydra.sweeper.params={optim.lr:'choice(0.01,50)'}",
            f"hydra.sweep.dir={folder}"]
    proc = run_cli(args, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
    summary = _summary(folder)
    assert summary["jobs"] == 4 and summary["failed"] >= 1 and summary["completed"] >= 1  # all 4 trials ran
    assert all(f["folder"].startswith("optim.lr=50,") for f in summary["failures"])
    assert all("became nan" in f["error"] for f in summary["failures"])
    best = summary["best"]
    assert best["overrides"] == [f"{k}={v}" for k, v in best["params"].items()] and best["value"] is not None
    assert (folder / "optimization_results.yaml").is_file() and "best trial: " in out
    assert "Failed experiment: the training loss became nan" in out  # Optuna recorded a FAIL trial
    assert "setup plugin alembic" not in out  # the database library's start-up chatter (optuna imports it)


def test_optuna_refuses_a_fixed_value_out_of_range_before_its_first_trial(tmp_path):
    # Optuna's sweeper checks nothing up front: every trial would fail on model.dropout in turn
    folder = tmp_path / "search"
    proc = run_cli(["-m", *OPTUNA, "hydra.sweeper.n_trials=3", "model.dropout=1.5", f"hydra.sweep.dir={folder}"],
                   tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.startswith("cnnlab: error: model.dropout=1.5 is not allowed: model.dropout must be in [0, 1) "
                                  "(in every trial of the search: hparams_search=optuna optim=sgd "), proc.stderr
    assert proc.stderr.rstrip().endswith("Nothing was run.") and proc.stderr.count("\n") == 1
    assert "Launching" not in proc.stdout and not list(folder.glob("**/results.json"))


def test_optuna_leaves_a_bad_searched_value_to_its_own_trials(tmp_path):
    # only values every trial shares are checked up front: lr=-1 fails just the trials that draw it
    folder = tmp_path / "search"
    proc = run_cli(["-m", *OPTUNA, "hydra.sweeper.n_trials=3", "hydra.sweeper.params={optim.lr:'choice(-1,0.01)'}",
                    f"hydra.sweep.dir={folder}"], tmp_path)
    assert "Launching" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = _summary(folder)
    assert summary["jobs"] == 3 and all(f["folder"].startswith("optim.lr=-1") for f in summary["failures"])


def test_a_search_whose_every_trial_fails_exits_1_and_says_so(tmp_path):
    pytest.importorskip("optuna")
    folder = tmp_path / "search"
    proc = run_cli(["-m", *OPTUNA, "hydra.sweeper.n_trials=2", "optim.lr=tag(log, interval(5, 10))",
                    f"hydra.sweep.dir={folder}"], tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "cnnlab: error: no trial of the search completed" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "No trials are completed yet" not in proc.stderr
    summary = _summary(folder)
    assert (summary["jobs"], summary["failed"], summary["exit_code"]) == (2, 2, 1)


def test_an_optuna_study_continues_from_its_sqlite_file(tmp_path):
    optuna = pytest.importorskip("optuna")
    db = tmp_path / "optuna.db"
    storage = f"sqlite:///{db}"
    for k in (1, 2):
        args = ["-m", *OPTUNA, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}",
                "hydra.sweeper.study_name=continued", f"hydra.sweep.dir={tmp_path / f'part{k}'}"]
        proc = run_cli(args, tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        study = optuna.load_study(study_name="continued", storage=storage)
        assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 2 * k


# four jobs of two epochs; only the third (640 images: 9 steps per epoch) reaches step 13
KILL_SWEEP = ["dataset.train_size=128,192,640,256", "trainer.max_epochs=2", "trainer.checkpoint_every_steps=5",
              "model.dropout=0.2", *CPU]


def test_a_sweep_killed_in_its_third_job_resumes_where_it_stopped(tmp_path):
    folder = tmp_path / "sweep"
    args = ["-m", *KILL_SWEEP, f"hydra.sweep.dir={folder}"]
    killed = run_cli(args, tmp_path, env={"CNNLAB_TEST_SIGKILL": "step:13"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    jobs = [folder / f"dataset.train_size={n}" for n in (128, 192, 640, 256)]
    assert [sweep.job_status(j)["status"] for j in jobs[:2]] == ["completed", "completed"]
    assert sweep.job_status(jobs[2]) is None and not jobs[3].exists()

    resumed = run_cli(args + ["resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = _summary(folder)
    assert (summary["jobs"], summary["completed"], summary["skipped"], summary["exit_code"]) == (4, 2, 2, 0)
    for job in jobs:
        assert sweep.job_status(job)["status"] == "completed" and len(sweep.job_status(job)["history"]) == 2
        assert _epochs_logged(job) == 2  # no job trained an epoch twice
    assert "Resumed from" in (jobs[2] / "train.log").read_text()
    assert "completed before with this config" in (jobs[0] / "train.log").read_text()

    # the resumed job ends with the weights of a run that never stopped (CPU)
    alone = tmp_path / "alone"
    single = [a.replace("128,192,640,256", "640") for a in KILL_SWEEP] + [f"hydra.run.dir={alone}"]
    assert run_cli(single, tmp_path).returncode == 0
    a = load_checkpoint(alone / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(jobs[2] / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_to_a_parallel_sweep_stops_its_workers_after_they_save(tmp_path):
    folder = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=local", "optim.lr=0.001,0.002", "trainer.max_epochs=500", *CPU,
            f"hydra.sweep.dir={folder}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = set()
    for line in proc.stdout:
        if "Epoch   1/" in line:
            started.add(line.split("]")[0])
        if len(started) == 2:
            break
    workers = [int(p.name.split("-")[-1].removesuffix(".json")) for p in (folder / ".cnnlab" / "running").iterdir()]
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 143 and "Traceback" not in err, err[-3000:]
    for job in ("optim.lr=0.001", "optim.lr=0.002"):
        assert sweep.job_status(folder / job)["status"] == "interrupted"
        assert load_checkpoint(folder / job / "checkpoints" / "last.pt")["fit"]["step"] >= 21
    assert _summary(folder)["interrupted"] == 2
    time.sleep(1)
    for pid in workers:  # no worker is left running
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def test_each_parallel_job_takes_a_gpu_no_other_job_holds(tmp_path):
    first, lock1 = sweep.claim_gpu(tmp_path, 2, job_num=0)
    second, lock2 = sweep.claim_gpu(tmp_path, 2, job_num=2)  # job 2 would start at GPU 0: taken
    third, lock3 = sweep.claim_gpu(tmp_path, 2, job_num=5)  # all taken: shares, round-robin
    assert (first, second, third) == (0, 1, 1) and lock1 is not None and lock2 is not None and lock3 is None
    os.close(lock1)
    again, lock4 = sweep.claim_gpu(tmp_path, 2, job_num=3)  # GPU 0 is free again
    assert again == 0 and lock4 is not None
    os.close(lock2)
    os.close(lock4)


def test_printed_commands_can_be_pasted_back(monkeypatch, tmp_path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    monkeypatch.delenv("CNNLAB_PROGRAM", raising=False)
    monkeypatch.setattr(sys, "argv", [".venv/bin/cnnlab", "-m", "experiment=overfitting"])
    job = tmp_path / "multirun" / "variant=baseline,seed=0"
    command = resume_command(job, ["variant=baseline", "seed=0", "dataset.classes=[5,6]"])
    words = shlex.split(command)
    assert words[0] == ".venv/bin/cnnlab"
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(words[1:])}
    assert parsed["hydra.run.dir"] == str(job) and parsed["resume"] is True and parsed["dataset.classes"] == [5, 6]
    again = sweep.resume_sweep_command(tmp_path / "sweep=odd,name", ["-m", "optim=sgd,adam"])
    words = shlex.split(again)
    assert words[:3] == [".venv/bin/cnnlab", "-m", "optim=sgd,adam"]
    assert OverridesParser.create().parse_overrides([words[-1]])[0].value() == str(tmp_path / "sweep=odd,name")
    monkeypatch.setattr(sys, "argv", ["/x/cnnlab/__main__.py"])
    assert shlex.split(resume_command(job, []))[:3] == [sys.executable, "-m", "cnnlab"]
    assert shlex.split(override_arg("a", "b c"))[0] == 'a="b c"'


@pytest.mark.parametrize("record, code", [(None, 1), ({"status": "completed"}, 0), ({"status": "failed"}, 1),
                                          ({"status": "interrupted", "error": "interrupted by SIGTERM"}, 143),
                                          ({"status": "interrupted", "error": "interrupted by SIGINT"}, 130),
                                          ({"status": "failed", "exit_code": 2}, 2)])
def test_a_job_record_stands_for_an_exit_code(record, code):
    assert sweep.exit_code_of(record) == code


def test_sweep_settings_are_checked(tmp_path):
    from conftest import compose_config
    from cnnlab.errors import ConfigError

    assert compose_config([]).sweep.rerun == "unfinished" and compose_config([]).sweep.fail_fast is False
    assert compose_config(["sweep.rerun=failed", "sweep.fail_fast=true"]).sweep.rerun == "failed"
    with pytest.raises(ConfigError, match="sweep.rerun must be unfinished or failed"):
        compose_config(["sweep.rerun=all"])
