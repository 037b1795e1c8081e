"""A finished run is never lost: failed attempts beside it, a lock per run folder, no run over a run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import FAST, run_cli
from test_bad_inputs import TINY, _cwd, _main
from cnnlab import rundir
from cnnlab.results import latest_attempt, write_attempt, write_results
from cnnlab.train.checkpoint import save_checkpoint


@pytest.fixture
def done(tmp_path):
    """A completed one-epoch run, and what it wrote."""
    run_dir = tmp_path / "done"
    with _cwd(tmp_path):
        code, out = _main([*TINY, "dataset.train_size=200", f"hydra.run.dir={run_dir}"])
    assert code == 0, out
    return run_dir


def _snapshot(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
            if p.is_file() and "attempts" not in p.parts and p.name not in (".cnnlab.lock", "train.log")}


def test_a_failed_resume_writes_an_attempt_and_leaves_the_completed_run_as_it_was(done, tmp_path):
    before = _snapshot(done)
    with _cwd(tmp_path):
        code, out = _main([*TINY, "dataset.train_size=200", "model.dropout=1.5", "resume=true",
                           f"hydra.run.dir={done}"])
    assert code == 2 and "model.dropout" in out
    after = _snapshot(done)
    assert {k: v for k, v in after.items() if k in before} == before  # .hydra/ too: put back after Hydra
    assert json.loads((done / "results.json").read_text())["status"] == "completed"
    [attempt] = list((done / "attempts").glob("*.json"))
    assert attempt.name.endswith(f"-{os.getpid()}.json") and len(attempt.name) == len("20261201T101010-.json") + \
        len(str(os.getpid()))
    record = json.loads(attempt.read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2 and "model.dropout" in record["error"]
    assert "model.dropout=1.5" in record["overrides"] and record["finished_at"]
    assert latest_attempt(done) == record  # newer than the completed results.json


def test_a_later_completed_attempt_is_the_latest(tmp_path):
    write_attempt(tmp_path, {"status": "failed", "error": "x", "exit_code": 1, "overrides": []})
    time.sleep(0.01)
    write_results(tmp_path, {"status": "completed", "test_acc": 0.5})
    assert latest_attempt(tmp_path)["status"] == "completed"
    second = write_attempt(tmp_path, {"status": "interrupted", "error": "y", "exit_code": 130, "overrides": []})
    assert latest_attempt(tmp_path)["status"] == "interrupted" and second.parent.name == "attempts"
    assert latest_attempt(tmp_path / "nothing") is None


def _fsize_limit(limit):
    def apply():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_full_disk_on_resume_keeps_the_completed_results(done, tmp_path):
    before = (done / "results.json").read_bytes()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *TINY, "dataset.train_size=200", "trainer.max_epochs=2",
                           "resume=true", f"hydra.run.dir={done}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=_fsize_limit(64_000))
    assert proc.returncode == 1 and "could not write checkpoint" in proc.stderr, proc.stderr
    assert (done / "results.json").read_bytes() == before
    [attempt] = [json.loads(p.read_text()) for p in (done / "attempts").glob("*.json")]
    assert attempt["exit_code"] == 1 and "could not write checkpoint" in attempt["error"]


def test_a_folder_holding_a_run_is_refused_without_resume_and_the_message_gives_the_command(done, tmp_path):
    before = _snapshot(done)
    with _cwd(tmp_path):
        code, out = _main([*TINY, "dataset.train_size=200", f"hydra.run.dir={done}"])
    assert code == 2 and "already holds a completed run" in out
    command = f"cnnlab {' '.join(TINY)} dataset.train_size=200 resume=true hydra.run.dir={done}"
    assert command in out
    assert _snapshot(done) == before and not (done / "attempts").exists()  # not even a record
    # the command it gives works
    with _cwd(tmp_path):
        code, out = _main(command.split()[1:])
    assert code == 0, out
    # a run that only checkpointed (killed, interrupted) is refused the same way
    (done / "results.json").unlink()
    with _cwd(tmp_path):
        code, out = _main([*TINY, f"hydra.run.dir={done}"])
    assert code == 2 and "an unfinished run (checkpoints/last.pt)" in out


def test_a_sweep_run_again_into_its_folder_refuses_each_job_and_keeps_them(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "optim=sgd,adam", *TINY, "dataset.train_size=200", f"hydra.sweep.dir={sweep}"]
    with _cwd(tmp_path):
        code, out = _main(args)
    assert code == 0, out
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    before = {job: (job / "results.json").read_bytes() for job in jobs}
    multirun_yaml = (sweep / "multirun.yaml").read_bytes()
    with _cwd(tmp_path):
        code, out = _main(args)
    assert code == 2 and "already holds the runs of a sweep (2 job folder(s)" in out, out
    assert f"-m optim=sgd,adam {' '.join(TINY)} dataset.train_size=200 hydra.sweep.dir={sweep} resume=true" in out
    assert {job: (job / "results.json").read_bytes() for job in jobs} == before
    assert (sweep / "multirun.yaml").read_bytes() == multirun_yaml
    # a sweep whose folder Hydra names (here by an interpolation) is refused job by job
    with _cwd(tmp_path):
        code, out = _main([*args[:-1], f"hydra.sweep.dir={sweep.parent}/${{oc.env:SWEEP_NAME,sweep}}"])
    assert code == 2 and out.count("already holds a completed run") == 2, out
    assert {job: (job / "results.json").read_bytes() for job in jobs} == before
    with _cwd(tmp_path):
        code, out = _main([*args, "resume=true"])  # resume=true continues every job in its own folder
    assert code == 0, out


def _start(args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_second_process_on_a_run_folder_is_refused_with_the_holders_pid(tmp_path):
    run_dir = tmp_path / "run"
    first = _start(FAST + ["trainer.max_epochs=500", "trainer.num_threads=1", f"hydra.run.dir={run_dir}"], tmp_path)
    for line in first.stdout:
        if "Epoch   1/" in line:
            break
    assert rundir.holder(run_dir) == first.pid
    second = run_cli(FAST + ["trainer.max_epochs=1", "resume=true", f"hydra.run.dir={run_dir}"], tmp_path)
    assert second.returncode == 2 and f"cnnlab process {first.pid} is running in it" in second.stderr
    assert "Traceback" not in second.stderr and first.poll() is None
    assert not (run_dir / "attempts").exists()  # the refused process wrote nothing into the folder
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    assert rundir.holder(run_dir) is None  # released at exit


def test_a_crashed_holder_leaves_no_stale_lock(tmp_path):
    code = "import sys, time; from cnnlab import rundir; rundir.lock(sys.argv[1]); print('ok', flush=True); " \
           "time.sleep(600)"
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ})
    assert child.stdout.readline().strip() == "ok"
    with pytest.raises(rundir.RunDirRefused, match=f"process {child.pid}"):
        rundir.lock(tmp_path)
    child.kill()  # SIGKILL: no clean-up code runs
    child.wait()
    rundir.lock(tmp_path)
    assert rundir.holder(tmp_path) == os.getpid()
    rundir.unlock(tmp_path)


def test_checkpoint_clean_up_removes_only_leftovers_of_ended_processes(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True).stdout.strip()
    theirs = folder / f".last.pt.{alive.pid}.abc123.tmp"  # another process is writing it right now
    stale = folder / f".last.pt.{ended}.xyz789.tmp"  # its writer crashed
    legacy = folder / ".last.pt.crash.tmp"
    for path in (theirs, stale, legacy):
        path.write_bytes(b"partial")
    try:
        save_checkpoint({"model": {"w": torch.zeros(2)}}, folder / "last.pt")
        assert theirs.exists() and not stale.exists() and not legacy.exists()
        assert (folder / "last.pt").is_file() and not list(folder.glob(f".last.pt.{os.getpid()}.*"))
    finally:
        alive.kill()
        alive.wait()


def test_the_report_on_a_results_json_holding_a_list_names_it_without_a_traceback(tmp_path, capsys):
    from cnnlab.report.cli import main as report_main

    run_dir = tmp_path / "sweep" / "job"
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text("[1, 2, 3]\n")
    with pytest.raises(SystemExit) as info:  # the only run is unreadable: nothing to report, exit 2
        report_main([str(tmp_path / "sweep"), "--no-figures"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "results.json holds a list" in err and "Traceback" not in err
