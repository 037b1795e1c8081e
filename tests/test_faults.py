"""Never lose work: exact resume after SIGKILL, signals, NaN, safe loading, full disks, run folders."""
import json
import os
import pickle
import re
import resource
import signal
import subprocess
import sys

import pytest
import torch

from conftest import FAST, run_cli
from cnnlab.errors import CnnlabError, ConfigError, TrainingError
from cnnlab.train.faults import Guard
from cnnlab.train.checkpoint import load_checkpoint

# Dropout, augmentation and a per-step schedule: every random stream and per-step state is exercised.
# digits has 21 batches per epoch.
EXACT = ["trainer.max_epochs=4", "trainer.checkpoint_every_steps=5", "model.dropout=0.3", "sched=cosine",
         "dataset.augment.crop=1", "dataset.augment.flip=true", "seed=3"]


def _same_tensors(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            if not _same_tensors(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                return False
        elif x != y:
            return False
    return True


def _metrics(history: list) -> list:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.slow
def test_sigkill_mid_epoch_and_at_epoch_end_then_resume_gives_identical_weights(train_run, tmp_path):
    full, _ = train_run(EXACT, tmp_path / "full")
    split = tmp_path / "split"
    args = FAST + EXACT + [f"hydra.run.dir={split}"]

    # 1. killed after step 27 (epoch 2, step 6): the last checkpoint is from step 25 (epoch 2, step 4)
    killed = run_cli(args, tmp_path, env={"CNNLAB_TEST_SIGKILL": "step:27"})
    assert killed.returncode == -9, killed.stderr
    saved = load_checkpoint(split / "checkpoints" / "last.pt")
    assert saved["fit"]["step"] == 25 and saved["fit"]["progress"]["batch"] == 4
    (split / "checkpoints" / ".last.pt.crash.tmp").write_bytes(b"half a checkpoint")  # as a crash leaves it

    # 2. resumed mid-epoch, then killed right after epoch 3's checkpoint
    killed = run_cli(args + ["resume=true"], tmp_path, env={"CNNLAB_TEST_SIGKILL": "epoch:3"})
    assert killed.returncode == -9, killed.stderr
    assert "Resumed from" in killed.stdout and "at epoch 2, step 4" in killed.stdout
    saved = load_checkpoint(split / "checkpoints" / "last.pt")
    assert saved["fit"]["epoch"] == 3 and saved["fit"]["progress"] is None
    assert not list((split / "checkpoints").glob(".*.tmp"))  # the crash's leftover was cleaned up

    # 3. resumed at the epoch boundary and run to the end
    done = run_cli(args + ["resume=true"], tmp_path)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((split / "results.json").read_text())

    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert _same_tensors(a["model"], b["model"])  # torch.equal on every weight
    assert _same_tensors(a["optimizer"], b["optimizer"]) and a["schedule"] == b["schedule"]
    assert _metrics(resumed["history"]) == _metrics(full["history"])
    assert resumed["test_acc"] == full["test_acc"] and resumed["test_loss"] == full["test_loss"]


def test_resuming_with_another_class_count_lists_the_mismatched_keys(train_run, tmp_path):
    train_run(["trainer.max_epochs=1"], tmp_path / "run")
    other = ["dataset=synthetic", "dataset.shape=[1,8,8]", "dataset.num_classes=3", "dataset.num_samples=64"]
    with pytest.raises(ConfigError, match=r"mismatched keys: .*weight") as err:
        train_run(["trainer.max_epochs=2", "resume=true", *other], tmp_path / "run")
    assert "different model or class count" in str(err.value)
    with pytest.raises(ConfigError, match="mismatched keys"):
        train_run(["trainer.max_epochs=2", "resume=true", "model=mlp"], tmp_path / "run")


def _start(args: list, cwd, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_line(proc: subprocess.Popen, text: str) -> None:
    for line in proc.stdout:
        if text in line:
            return
    raise AssertionError(f"the run ended before printing {text!r}: {proc.stderr.read()}")


@pytest.mark.slow
def test_sigint_and_sigterm_save_a_checkpoint_and_say_how_to_resume(tmp_path):
    procs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        run_dir = tmp_path / sig.name
        procs[sig] = (run_dir, _start(FAST + ["trainer.max_epochs=200", f"hydra.run.dir={run_dir}"], tmp_path))
    for sig, (run_dir, proc) in procs.items():
        _wait_for_line(proc, "Epoch   1/")
        proc.send_signal(sig)
    for sig, (run_dir, proc) in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
        assert f"interrupted by {sig.name}" in err and "Traceback" not in err
        command = f"python -m cnnlab {' '.join(FAST)} trainer.max_epochs=200 resume=true hydra.run.dir={run_dir}"
        assert command in err
        saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        assert 1 <= saved["fit"]["epoch"] < 200 and saved["fit"]["step"] >= 21
        assert json.loads((run_dir / "results.json").read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_leaves_valid_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(FAST + ["trainer.max_epochs=200", "trainer.checkpoint_every_steps=1", f"hydra.run.dir={run_dir}"],
                  tmp_path)
    _wait_for_line(proc, "Epoch   2/")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["fit"]["epoch"] >= 2
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))


def test_a_nan_loss_stops_within_the_step_and_keeps_the_checkpoints_from_before(train_run, tmp_path):
    # SGD at lr 2 blows up in epoch 3 (step 6 on CPU with seed 0); the guard checks every CPU step
    with pytest.raises(TrainingError, match=r"became nan at epoch (\d+), step (\d+) of 21") as err:
        train_run(["trainer.max_epochs=5", "optim=sgd", "optim.lr=2"], tmp_path / "run")
    epoch, step = map(int, re.search(r"epoch (\d+), step (\d+)", str(err.value)).groups())
    assert epoch >= 2 and "learning rate" in str(err.value) and err.value.exit_code == 1
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert last["fit"]["epoch"] == epoch - 1 and best["fit"]["epoch"] <= epoch - 1
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert not (tmp_path / "run" / "results.json").exists()


def test_on_cuda_nan_is_found_at_the_next_sync_point_and_named_exactly():
    guard = Guard(every=4)  # what a CUDA run gets: trainer.sync_every steps between checks
    guard.start_epoch(step=40, start_batch=0)
    assert guard.next == 44
    losses = torch.tensor([0.5, 0.4, float("inf"), float("nan"), 0.0])
    with pytest.raises(TrainingError, match=r"became inf at epoch 3, step 3 of 5 \(step 43 of the run\)"):
        guard.boundary(epoch=3, batch=3, num_batches=5, step=44, step_losses=losses, progress=dict)


class _Payload:
    """Unpickling this runs a shell command: what a malicious checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_loading_never_runs_code_and_bad_files_give_clear_errors(train_run, tmp_path):
    _, run_dir = train_run(["trainer.max_epochs=1"], tmp_path / "run")
    good = run_dir / "checkpoints" / "last.pt"
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "format_version": 1, "x": _Payload(marker)}, evil)
    evil_pickle = tmp_path / "evil.pkl"
    evil_pickle.write_bytes(pickle.dumps(_Payload(marker), protocol=2))  # a bare pickle, torch's old format
    for path in (evil, evil_pickle):
        with pytest.raises(CnnlabError, match="refused to load .*never runs code") as err:
            load_checkpoint(path)
        assert "system" in str(err.value) and "weights_only` set to `False" not in str(err.value)
    assert not marker.exists()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CnnlabError, match="not a readable checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, foreign)  # another tool's checkpoint
    with pytest.raises(CnnlabError, match="not a cnnlab checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint at all\n")
    with pytest.raises(CnnlabError, match="not a readable checkpoint"):
        load_checkpoint(text)
    with pytest.raises(CnnlabError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not marker.exists()


def test_deterministic_algorithms_give_the_same_weights_for_the_same_seed(train_run, tmp_path):
    args = ["trainer.max_epochs=1", "trainer.deterministic=true", "dataset.train_size=256", "seed=5"]
    try:
        a, _ = train_run(args, tmp_path / "a")
        b, _ = train_run(args, tmp_path / "b")
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    wa = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    wb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert _same_tensors(wa["model"], wb["model"]) and _metrics(a["history"]) == _metrics(b["history"])


def _file_size_limit(limit: int):
    def apply():  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_full_disk_is_reported_clearly_and_keeps_earlier_checkpoints(train_run, tmp_path):
    _, run_dir = train_run(["trainer.max_epochs=1"], tmp_path / "run")
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    # resumed with a file-size limit far below a checkpoint's size: epoch 2's checkpoint cannot be written
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "cnnlab", *FAST, "trainer.max_epochs=2", "resume=true",
                           f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=_file_size_limit(64_000))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "could not write checkpoint" in done.stderr and "file-size limit" in done.stderr
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["fit"]["epoch"] == 1
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))


@pytest.mark.slow
def test_an_unwritable_output_folder_is_reported_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_cli(FAST + [f"hydra.run.dir={blocker}/run"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("cnnlab: error: cannot write to hydra.run.dir=") and "Not a directory" in done.stderr


def _record_writes(monkeypatch) -> list:
    from cnnlab.train import epoch_checkpoints

    written = []
    real = epoch_checkpoints.save_checkpoint

    def save(state, path):
        written.append((path.name, state["fit"]["epoch"]))
        real(state, path)
    monkeypatch.setattr(epoch_checkpoints, "save_checkpoint", save)
    return written


def test_short_epochs_write_their_checkpoints_once_at_the_end_holding_the_best_and_last_epochs(
        train_run, tmp_path, monkeypatch):
    written = _record_writes(monkeypatch)
    # adam at 0.05 on digits: the validation loss is best before the last of 8 epochs (a kept best.pt)
    results, run_dir = train_run(["trainer.max_epochs=8", "optim.lr=0.05"])
    assert results["best_epoch"] < 8, results["history"]
    assert written == [("best.pt", results["best_epoch"]), ("last.pt", 8)]
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["fit"]["epoch"] == results["best_epoch"] == best["tracker"]["best_epoch"]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["tracker"]["best_epoch"] == results["best_epoch"]


def test_checkpoint_every_s_0_writes_both_at_every_epoch_as_before(train_run, tmp_path, monkeypatch):
    written = _record_writes(monkeypatch)
    results, _ = train_run(["trainer.max_epochs=4", "trainer.checkpoint_every_s=0"])
    assert [e for name, e in written if name == "last.pt"] == [1, 2, 3, 4]
    improved = [row["epoch"] for k, row in enumerate(results["history"])
                if row["val/loss"] < min([r["val/loss"] for r in results["history"][:k]] or [float("inf")])]
    assert [e for name, e in written if name == "best.pt"] == improved


def test_a_kept_epoch_end_is_written_when_its_interval_has_passed(train_run, tmp_path, monkeypatch):
    from cnnlab.train import epoch_checkpoints

    clock = iter(range(0, 1000, 6))  # each reading of the clock is 6 s after the one before
    monkeypatch.setattr(epoch_checkpoints.time, "monotonic", lambda: next(clock))
    written = _record_writes(monkeypatch)
    train_run(["trainer.max_epochs=5"])
    # written at 0 s, due at epoch 2 (12 s since), at epoch 4 (12 s since the write), and at the last
    assert [e for name, e in written if name == "last.pt"] == [2, 4, 5]


def test_a_step_checkpoint_due_at_an_epochs_last_step_is_the_epoch_ends(train_run, tmp_path, monkeypatch):
    written = _record_writes(monkeypatch)  # digits: 21 steps per epoch
    train_run(["trainer.max_epochs=3", "trainer.checkpoint_every_steps=21"])
    assert [e for name, e in written if name == "last.pt"] == [1, 2, 3]
