"""The command line as a user meets it: a run, a sweep, and clear answers to mistakes."""
import json

import pytest

from conftest import run_cli

TINY = ["trainer.max_epochs=1", "trainer.summary=false", "trainer.progress=false"]


@pytest.mark.slow
def test_python_dash_m_runs_and_writes_into_hydra_run_dir(tmp_path):
    out = tmp_path / "run"
    proc = run_cli([*TINY, f"hydra.run.dir={out}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Epoch   1/1" in proc.stdout and "Test accuracy" in proc.stdout
    assert json.loads((out / "results.json").read_text())["status"] == "completed"
    assert (out / "train.log").read_text().count("Epoch") >= 1
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_sweep_runs_each_job_in_a_folder_named_after_its_overrides(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "optim=sgd,adam", "model.dropout=0,0.5", *TINY, f"hydra.sweep.dir={sweep}"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == ["optim=adam,model.dropout=0", "optim=adam,model.dropout=0.5",
                       "optim=sgd,model.dropout=0", "optim=sgd,model.dropout=0.5"]
    for name in folders:
        job = sweep / name
        results = json.loads((job / "results.json").read_text())
        assert results["status"] == "completed"
        assert (job / "checkpoints" / "last.pt").is_file()
        assert len(list(job.glob("events.out.tfevents.*"))) == 1  # one writer per job, closed
    # a later job's start-up counts its own set-up, not the imports and jobs before it in the process
    first, last = (json.loads((sweep / name / "results.json").read_text()) for name in
                   ("optim=sgd,model.dropout=0", "optim=adam,model.dropout=0.5"))
    assert last["startup_seconds"] < first["startup_seconds"]
    # jobs in one process start from the same seed: the same optimizer with dropout 0 or 0.5 differs,
    # but a job's result does not depend on the jobs before it
    single = tmp_path / "single"
    run_cli(["optim=adam", "model.dropout=0.5", *TINY, f"hydra.run.dir={single}"], cwd=tmp_path)
    alone = json.loads((single / "results.json").read_text())
    in_sweep = json.loads((sweep / "optim=adam,model.dropout=0.5" / "results.json").read_text())
    assert alone["history"] == [dict(r, seconds=alone["history"][i]["seconds"]) for i, r in
                                enumerate(in_sweep["history"])]


# Bad inputs and their messages: tests/test_bad_inputs.py, one table.
