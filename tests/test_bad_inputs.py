"""Every known bad input, as a table: the command line, the exit code, a phrase the message must hold.

A new case is one line. Each row runs `cnnlab.cli.main()`, the function behind the `cnnlab` command,
in this process (a process per row would cost 2-3 s of start-up each); `test_the_real_process_*`
runs a few rows as real processes, so the exit code and stderr are those a shell sees. `{run}` is a
fresh run folder, `{done}` a folder holding a completed run (`{midepoch}`: its checkpoint as if
saved mid-epoch), `{folder1}` a folder dataset with one class, `{empty}` an empty folder,
`{garbage}` class folders of files that are not images, `{file}` a regular file, `{locked}` a
folder another process has locked.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnlab.cli
from conftest import FAST, run_cli

TINY = FAST + ["trainer.max_epochs=1", "trainer.num_threads=1"]

# (command line after TINY, expected exit code, phrase in the output)
CASES = [
    # values out of range or of the wrong type
    (["trainer.checkpoint_every_s=-1"], 2, "trainer.checkpoint_every_s must be a number of seconds >= 0"),
    (["optim.lr=-1"], 2, "optim.lr"),
    (["optim.lr=fast"], 2, "optim.lr"),
    (["optim.lr=inf"], 2, "optim.lr=inf is not allowed: optim.lr must be a finite number"),
    (["optim.lr=nan"], 2, "optim.lr"),
    (["loss.l2=inf"], 2, "loss.l2=inf"),
    (["model.dropout=1.5"], 2, "model.dropout"),
    (["dataset.batch_size=0"], 2, "dataset.batch_size"),
    (["trainer.max_epochs=-2"], 2, "trainer.max_epochs"),
    (["trainer.max_epochs=abc"], 2, "bad value in 'trainer.max_epochs=abc'"),
    (["optim.lr=[1,2]"], 2, "optim.lr"),
    (["trainer.early_stopping.patience=0"], 2, "trainer.early_stopping.patience"),
    (["seed=-1"], 2, "seed=-1 is not allowed"),
    (["seed=18446744073709551616"], 2, "seed must be an integer from 0 to 2^63-1"),
    (["device=cuda:7"], 2, "device=cuda:7"),
    # misspelt keys, unknown presets, Hydra's grammar
    (["optim.lrate=0.1"], 2, "lrate"),
    (["train.epochs=1"], 2, "Did you mean trainer.max_epochs?"),
    (["model=resnet999"], 2, "there is no model preset 'resnet999'"),
    (["optim=adamx"], 2, "adamx"),
    (["optim=adam,sgd"], 2, "--multirun"),
    (["dataset.classes=[1,2"], 2, "[1,2"),
    # data that cannot train, or is not what was asked
    (["dataset.classes=[3]"], 2, "keeps 1 class"),
    (["dataset=folder", "dataset.path={folder1}"], 2, "a classifier needs at least two"),
    (["dataset.train_size=100000"], 2, "dataset.train_size=100000 is more than the 1,293 training images"),
    (["dataset.mean=[0.5,0.5]"], 2, "has 1 channel(s): give one value per channel"),
    (["dataset.std=[0.2,0.2,0.2]"], 2, "dataset.std=[0.2, 0.2, 0.2] has 3 value(s)"),
    (["dataset=folder", "dataset.path=/no/such/folder"], 2, "/no/such/folder"),
    (["dataset=folder"], 2, "dataset.path"),
    (["dataset=folder", "dataset.path={empty}"], 2, "is empty or has no class subfolders"),
    (["dataset=folder", "dataset.path={garbage}", "data_dir={run}"], 2, "none of the 4 images"),
    (["+foo=1"], 2, "unknown config key 'foo'"),
    (["dataset=mnist", "dataset.download=false"], 2, "MNIST"),
    # run folders
    (["hydra.run.dir={file}/run"], 2, "cannot write to hydra.run.dir="),
    (['hydra.run.dir="{file}/quoted run"'], 2, "Not a directory"),
    (["hydra.run.dir={file}/${now:%Y-%m-%d}"], 2, "Not a directory"),
    (["hydra.run.dir={done}"], 2, "resume=true hydra.run.dir={done}"),
    (["hydra.run.dir={locked}"], 2, "is in use: cnnlab process 4242"),
    (["resume=true", "optim=sgd", "hydra.run.dir={done}"], 2, "optim.name: saved 'adam', now 'sgd'"),
    (["resume=true", "dataset.train_size=200", "dataset.batch_size=32", "hydra.run.dir={midepoch}"], 2,
     "dataset.batch_size: saved 64, now 32"),
    (["resume=true", "model=mlp", "hydra.run.dir={done}"], 2, "mismatched keys"),
    (["resume=true", "trainer.max_epoch=3", "hydra.run.dir={done}"], 2, "Did you mean trainer.max_epochs?"),
    (["resume=true", "model.dropout=1.5", "hydra.run.dir={done}"], 2, "model.dropout"),
    # a sweep refuses a bad value up front, wherever it sits (sweep_validation: one compose per value)
    (["-m", "optim=sgd,adam", "seed=0,1,x", "hydra.sweep.dir={run}"], 2, "bad value in 'seed=x'"),
    (["-m", "optim=sgd,adam,sgdd", "seed=0,1", "hydra.sweep.dir={run}"], 2, "no optim preset 'sgdd'"),
    # Hydra's flags
    (["--shell-completion"], 2, "install=bash"),
    (["--shell-completion", "install=bash"], 0, "hydra_bash_completion"),
    (["--version"], 0, f"cnnlab {cnnlab.__version__}"),
    (["--cfg", "job", "hydra.run.dir={run}"], 0, "max_epochs: 1"),
    (["--info", "defaults"], 0, "model/lecture_cnn"),
    (["--help"], 0, "cnnlab"),
]


def _ids(case) -> str:
    return " ".join(case[0])[:60]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """The folders the rows name: made once, since a completed run costs a second of training."""
    root = tmp_path_factory.mktemp("places")
    (root / "a-file").write_text("")
    one = root / "one_class" / "cats"
    one.mkdir(parents=True)
    from PIL import Image
    for i in range(4):
        Image.new("L", (8, 8), color=40 * i).save(one / f"{i}.png")
    (root / "empty").mkdir()
    for name in ("a", "b"):
        (root / "garbage" / name).mkdir(parents=True)
        for i in range(2):
            (root / "garbage" / name / f"{i}.png").write_text("not an image")
    done = root / "done"
    with _cwd(root):
        code, out = _main([*TINY, "dataset.train_size=200", f"hydra.run.dir={done}"])
    assert code == 0, out
    midepoch = root / "midepoch"
    midepoch.mkdir()
    (midepoch / "checkpoints").mkdir()
    saved = torch.load(done / "checkpoints" / "last.pt", weights_only=True)
    saved["fit"]["progress"] = {"epoch": 1, "batch": 2}
    torch.save(saved, midepoch / "checkpoints" / "last.pt")
    locked = root / "locked"
    locked.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(locked / ".cnnlab.lock")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield {"file": root / "a-file", "folder1": root / "one_class", "empty": root / "empty",
           "garbage": root / "garbage", "done": done, "midepoch": midepoch,
           "locked": locked, "root": root}
    holder.kill()
    holder.wait()


# another process holding a run folder's lock, with a PID the row can name
_HOLD_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f.fileno(), fcntl.LOCK_EX)
f.write("4242\\n"); f.flush()
print("locked", flush=True)
time.sleep(600)
"""


class _cwd:
    def __init__(self, path):
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


def _main(args: list) -> tuple[int, str]:
    """`cnnlab ARGS` in this process: (exit code, stdout + stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["cnnlab", *args]
    cnnlab.cli._exit_code = 0
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cnnlab.cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
        cnnlab.cli._exit_code = 0
        _forget_hydra()  # a process ends after main(); this one runs the next test
    return code, out.getvalue() + err.getvalue()


def _forget_hydra() -> None:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


def _fill(args: list, places: dict, run: Path) -> list:
    return [a.format(run=run, **places) if "{" in a and "${" not in a else
            a.replace("{file}", str(places["file"])) for a in args]


@pytest.mark.parametrize("args, code, phrase", CASES, ids=[_ids(c) for c in CASES])
def test_a_bad_input_gets_its_exit_code_and_one_clear_message(places, tmp_path, monkeypatch, args, code, phrase):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "empty"))
    run = tmp_path / "run"
    before = _contents(places["done"])
    if not any(a.startswith("hydra.run.dir=") for a in args):
        args = [*args, "hydra.run.dir={run}"]
    command = [*args, *TINY] if args[0].startswith("-") else [*TINY, *args]  # Hydra's flags come first
    with _cwd(tmp_path):
        got, out = _main(_fill(command, places, run))
    phrase = _fill([phrase], places, run)[0]
    assert got == code, out
    assert phrase in out, out
    assert "Traceback" not in out
    if code:
        assert not (run / "checkpoints").exists()  # refused before training
        assert "\n" not in out.split("cnnlab: error: ", 1)[-1].strip(), out  # one paragraph
    assert not list(tmp_path.glob('"*')) and not (tmp_path / "outputs").exists()  # no junk folders
    assert not (tmp_path / "run").exists() or args[:2] != ["--cfg", "job"]  # --cfg writes nothing
    # the completed run is untouched by every row, including those pointed at it
    assert {p: data for p, data in _contents(places["done"]).items() if p in before} == before
    assert json.loads((places["done"] / "results.json").read_text())["status"] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("args, code, phrase", [
    (["trainer.max_epochs=abc"], 2, "trainer.max_epochs=abc"),
    (["model=resnet999"], 2, "resnet999"),
    (["optim.lr=inf"], 2, "optim.lr"),
    (["dataset.classes=[3]"], 2, "keeps 1 class"),
])
def test_the_real_process_exits_with_the_code_and_prints_no_traceback(tmp_path, args, code, phrase):
    proc = run_cli([*TINY, *args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith("cnnlab: error: ") and phrase in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr + proc.stdout


def test_a_value_refused_only_when_its_job_composes_keeps_the_jobs_before_it(tmp_path, monkeypatch):
    # what only a combination of values breaks is found when that job composes: here every job after
    # the first is left to its launch, as such a combination would be
    from cnnlab import sweep_validation

    monkeypatch.setattr(sweep_validation, "covering_jobs", lambda batch: list(batch)[:1])
    sweep = tmp_path / "sweep"
    with _cwd(tmp_path):
        code, out = _main(["-m", *TINY, "hydra/launcher=basic", "seed=0,x", f"hydra.sweep.dir={sweep}"])
    assert code == 2, out
    message = out.split("cnnlab: error: ", 1)[-1]
    assert "bad value in 'seed=x'" in message and "the jobs before it are kept" in message
    assert "nothing was run" not in message.lower() and "Traceback" not in out
    done = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert [r["status"] for r in done] == ["completed"] and done[0]["seed"] == 0


@pytest.mark.parametrize("values", [["seed=0,1", "optim.lr=-1"], ["seed=0,1", "optim.lr=0.1,-1"]],
                         ids=["every job", "one value of two"])
def test_a_sweep_refuses_a_value_out_of_range_before_its_first_job(tmp_path, values):
    # Hydra's compose checks types only: cnnlab's own ranges are checked on the composed jobs up front,
    # so a bad learning rate is not tried, and refused, once per job
    sweep = tmp_path / "sweep"
    with _cwd(tmp_path):
        code, out = _main(["-m", *TINY, "hydra/launcher=basic", *values, f"hydra.sweep.dir={sweep}"])
    assert code == 2, out
    message = out.split("cnnlab: error: ", 1)[-1].strip()
    assert "optim.lr=-1.0 is not allowed: optim.lr must be positive (in the sweep's job " in message, out
    assert "trainer.num_threads=1 seed=0 optim.lr=-1). Nothing was run." in message
    assert "\n" not in message and "Traceback" not in out
    assert not list(sweep.glob("**/results.json")) and not list(sweep.glob("**/checkpoints"))


def test_the_up_front_check_leaves_values_only_a_job_can_resolve_to_the_job(tmp_path):
    # ${hydra:runtime.cwd} resolves only inside a job (HydraConfig is set there, not while the sweep
    # is checked): the check must not refuse it
    sweep = tmp_path / "sweep"
    with _cwd(tmp_path):
        code, out = _main(["-m", *TINY, "hydra/launcher=basic", "dataset.train_size=200", "seed=0,1",
                           "data_dir=${hydra:runtime.cwd}/data", f"hydra.sweep.dir={sweep}"])
    assert code == 0, out
    assert sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/results.json")) == ["completed"] * 2


def test_the_up_front_check_composes_each_override_once_not_each_job():
    from cnnlab.sweep_validation import covering_jobs

    batch = [(f"optim={o}", f"seed={s}") for o in ("sgd", "momentum", "adagrad", "rmsprop", "adam") for s in range(8)]
    chosen = covering_jobs(batch)
    assert {o for job in chosen for o in job} == {o for job in batch for o in job}  # every value checked
    assert len(chosen) == 12 and chosen[0] == batch[0]
    assert covering_jobs([("seed=0",), ("seed=0",)]) == [("seed=0",)]
    assert covering_jobs([()]) == [()]  # a sweep of one job without overrides is still composed


def _contents(run_dir: Path) -> dict:
    """What a run wrote; attempts/ records, the lock's PID and train.log's appended lines may change."""
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.parent.name != "attempts"
            and p.name not in (".cnnlab.lock", "train.log")}


def _deny(monkeypatch, root: Path) -> None:
    """Reading anything under `root` fails as it does for a folder of another user without access
    (the tests run as root, whom file permissions do not stop)."""
    def guard(real):
        def call(path, *args, **kwargs):
            if str(path).startswith(str(root) + os.sep) or str(path) == str(root) and real is not os.stat:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)
        return call
    for name in ("stat", "listdir", "scandir"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))


@pytest.mark.parametrize("target", ["data_dir", "folder"])
def test_an_unreadable_data_dir_or_folder_is_a_message_not_a_traceback(places, tmp_path, monkeypatch, target):
    data = tmp_path / "data"
    (data / "MNIST" / "raw").mkdir(parents=True)
    args = ["dataset=mnist", "dataset.download=false", f"data_dir={data}"] if target == "data_dir" else \
        ["dataset=folder", f"dataset.path={places['folder1']}", f"data_dir={data}"]
    _deny(monkeypatch, data if target == "data_dir" else places["folder1"])
    with _cwd(tmp_path):
        code, out = _main([*TINY, *args, f"hydra.run.dir={tmp_path / 'run'}"])
    monkeypatch.undo()
    assert code == 2 and "permission denied" in out and "Traceback" not in out, out
