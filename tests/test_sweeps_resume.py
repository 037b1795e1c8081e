"""Resuming with other settings: more epochs under every schedule, a new lr that takes effect, and a
clear refusal for what cannot change."""
import math
import shutil

import pytest
import torch

from conftest import FAST, run_cli
from cnnlab.config import OptimConfig, SchedConfig
from cnnlab.errors import ConfigError
from cnnlab.optim import build_optimizer, build_schedule, current_lr, resize_schedule

SHORT = ["dataset.train_size=256", "seed=1"]  # 4 steps per epoch
# in-process runs keep torch's thread count: torch.set_num_threads would outlive the test
CLI = FAST + SHORT + ["trainer.num_threads=1"]


def _walk(name, epochs, steps=5, resume_at=None, new_epochs=None, **sched):
    """The lr at every step; with resume_at, the schedule is saved there and a fresh one built for
    new_epochs loads it and is resized, as a resumed run does."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer(OptimConfig(name="momentum", lr=0.1), [w])
    schedule = build_schedule(SchedConfig(name=name, **sched), opt, epochs, steps)
    seen = []
    total = (new_epochs or epochs) * steps
    for step in range(total):
        if step == resume_at:
            saved_opt, saved_sched = opt.state_dict(), schedule.state_dict()
            opt = build_optimizer(OptimConfig(name="momentum", lr=0.1), [w])
            schedule = build_schedule(SchedConfig(name=name, **sched), opt, new_epochs, steps)
            opt.load_state_dict(saved_opt)
            schedule.load_state_dict(saved_sched)
            resize_schedule(schedule, step, new_epochs * steps)
        seen.append(current_lr(opt))
        opt.step()
        schedule.after_batch()
        if (step + 1) % steps == 0:
            schedule.after_epoch(1.0)
    return seen


@pytest.mark.parametrize("name, sched", [("none", {}), ("step", {"step_size": 1, "gamma": 0.5}),
                                         ("plateau", {"patience": 0}), ("cosine", {"min_lr": 0.001}),
                                         ("cosine", {"warmup_epochs": 2}), ("onecycle", {})])
@pytest.mark.parametrize("resume_at", [3, 12, 20])  # rising or warm-up, mid-run, the end of a finished run
def test_more_epochs_continue_every_schedule_without_a_jump_or_an_error(name, sched, resume_at):
    lrs = _walk(name, 4, resume_at=resume_at, new_epochs=8, **sched)
    orig = _walk(name, 4, **sched)
    assert len(lrs) == 40 and all(math.isfinite(v) and v >= 0 for v in lrs)
    assert lrs[:resume_at] == orig[:resume_at]  # unchanged up to the resume point
    if name in ("cosine", "onecycle"):
        # from the resume point on, no step is bigger than the schedule's own biggest step
        biggest = max(abs(b - a) for a, b in zip(orig, orig[1:]))
        assert abs(lrs[resume_at] - lrs[resume_at - 1]) <= biggest + 1e-12
        if resume_at == 12:  # mid-run: anneals down to the new end
            assert lrs[-1] < lrs[12] and lrs[-1] == pytest.approx(min(lrs[12:]), rel=1e-6)
        if resume_at == 20:  # a finished run stays at its final lr
            assert max(lrs[20:]) <= orig[-1] * (1 + 1e-6)


def test_resume_with_more_epochs_under_onecycle_and_cosine_then_a_new_lr(train_run, tmp_path):
    for sched in ("onecycle", "cosine"):
        folder = tmp_path / sched
        train_run(SHORT + [f"sched={sched}", "trainer.max_epochs=2"], folder)
        longer, _ = train_run(SHORT + [f"sched={sched}", "trainer.max_epochs=4", "resume=true"], folder)
        assert longer["epochs"] == 4 and [r["epoch"] for r in longer["history"]] == [1, 2, 3, 4]
        lrs = [r["lr"] for r in longer["history"]]
        assert all(v >= 0 and math.isfinite(v) for v in lrs) and lrs[3] <= lrs[1] * (1 + 1e-6)
    # a changed optim.lr takes effect from the resume point, and the run says so
    folder = tmp_path / "lr"
    first, _ = train_run(SHORT + ["trainer.max_epochs=1"], folder)
    done = run_cli(CLI + ["trainer.max_epochs=2", "optim.lr=0.0005", "resume=true",
                                   f"hydra.run.dir={folder}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "optim.lr 0.001 -> 0.0005" in done.stdout
    import json
    history = json.loads((folder / "results.json").read_text())["history"]
    assert history[0]["lr"] == pytest.approx(0.001) and history[1]["lr"] == pytest.approx(0.0005)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A one-epoch run, trained once by the real command, for the refusal cases to resume."""
    root = tmp_path_factory.mktemp("finished")
    first = run_cli(CLI + ["trainer.max_epochs=1", f"hydra.run.dir={root / 'run'}"], root)
    assert first.returncode == 0, first.stderr
    return root / "run"


@pytest.mark.parametrize("change, key", [(["model.dropout=0.5"], "model.dropout"),
                                         (["dataset.batch_size=32"], "dataset.batch_size"),
                                         (["seed=2"], "seed"), (["sched=cosine"], "sched.name")])
def test_a_change_that_cannot_be_honoured_is_refused_in_one_paragraph(finished_run, tmp_path, change, key):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)  # one trained run for every case: each refusal leaves it as it was
    args = CLI + ["trainer.max_epochs=2", "resume=true", f"hydra.run.dir={folder}"]
    done = run_cli(args + change + ["optim.lr=0.002"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "cannot resume from" in done.stderr
    assert f"{key}: saved" in done.stderr and "optim.lr" not in done.stderr  # only what cannot change


def test_two_refused_changes_are_both_listed(train_run, tmp_path):
    train_run(SHORT + ["trainer.max_epochs=1"], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        train_run(SHORT[:-1] + ["seed=4", "model.dropout=0.25", "trainer.max_epochs=2", "resume=true"],
                  tmp_path / "run")
    assert "model.dropout: saved 0.0, now 0.25" in str(err.value) and "seed: saved 1, now 4" in str(err.value)
