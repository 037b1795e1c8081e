"""cnnlab-lrfind: the learning-rate range test on digits."""
import json
import math
import subprocess
import sys

import cnnlab
from cnnlab.lrfind import falling_range, suggest, train_command
from tests.conftest import FAST

QUICK = FAST + ["trainer.num_threads=1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_suggest_picks_the_steepest_fall_before_the_minimum():
    lrs = [1e-6 * 10 ** (k / 10) for k in range(70)]  # 1e-6 .. ~1e1
    # flat, falling between 1e-4 and 1e-2 (steepest at 1e-3), then rising
    loss = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + (0.5 * (math.log10(lr) + 2) ** 2 if lr > 1e-2 else 0)
            for lr in lrs]
    suggested, lowest = suggest(lrs, loss)
    assert 0.7e-3 < suggested < 1.5e-3 and 1e-2 <= lowest < 3e-2
    assert suggest(lrs, [2.0] * 70)[0] is None  # a loss that never falls gets no suggestion


def test_on_digits_the_suggestion_lies_where_the_loss_falls(tmp_path):
    found = cnnlab.lr_find(QUICK + [f"hydra.run.dir={tmp_path / 'find'}"])
    run_dir = tmp_path / "find"
    assert found["run_dir"] == str(run_dir)
    saved = json.loads((run_dir / "lr_find.json").read_text())
    curve = saved["curve"]
    lrs, smoothed = curve["lr"], curve["smoothed_loss"]
    assert len(lrs) == len(curve["loss"]) == saved["steps"] <= 200
    assert all(b > a for a, b in zip(lrs, lrs[1:])) and lrs[0] == 1e-7
    assert saved["stopped_early"] and max(v for v in smoothed if v) > 4 * min(v for v in smoothed if v) * 0.9
    low, high = falling_range(lrs, smoothed)
    suggested = saved["suggested_lr"]
    assert low <= suggested < high and suggested < saved["min_loss_lr"]
    k = lrs.index(suggested)
    assert smoothed[k + 1] < smoothed[k] < smoothed[k - 1] < 0.98 * smoothed[0]
    assert 1e-4 < suggested < 1e-1  # Adam on digits: around its default 1e-3, far from either end
    assert (run_dir / "lr_find.png").read_bytes().startswith(PNG_MAGIC)
    # nothing else: no checkpoint, results.json or TensorBoard events from the throwaway model
    # and no .hydra/: a report over outputs/ does not take the finder's folder for an unfinished run
    assert sorted(p.name for p in run_dir.iterdir()) == ["lr_find.json", "lr_find.png", "train.log"]
    assert "Suggested learning rate" in (run_dir / "train.log").read_text()


def test_it_leaves_no_trace_on_a_later_run(tmp_path):
    run = QUICK + ["trainer.max_epochs=1", "dataset.train_size=300"]
    before = cnnlab.train(run + [f"hydra.run.dir={tmp_path / 'before'}"])
    cnnlab.lr_find(QUICK + ["lr_find.steps=40", "dataset.train_size=300", f"hydra.run.dir={tmp_path / 'find'}"])
    after = cnnlab.train(run + [f"hydra.run.dir={tmp_path / 'after'}"])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(after["history"]) == strip(before["history"]) and after["test_acc"] == before["test_acc"]


def test_the_command_prints_the_suggestion_and_how_to_use_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cnnlab.lrfind", *QUICK, "model=mlp", "lr_find.steps=60",
                           "optim.lr=0.5"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folders = list((tmp_path / "outputs" / "lr_find").glob("*/*"))
    assert len(folders) == 1 and (folders[0] / "lr_find.json").exists()
    saved = json.loads((folders[0] / "lr_find.json").read_text())
    lines = done.stdout.strip().splitlines()
    assert f"Suggested learning rate: {saved['suggested_lr']:.2g}" in done.stdout
    assert lines[-1].strip() == train_command(saved["overrides"], saved["suggested_lr"])
    assert lines[-1].strip().startswith("cnnlab ") and "model=mlp" in lines[-1] and "optim.lr=0.5" not in lines[-1]
    assert "lr_find.steps" not in lines[-1] and lines[-1].endswith(f"optim.lr={saved['suggested_lr']:.2g}")


def test_a_bad_override_is_one_paragraph_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cnnlab.lrfind", "lr_find.steps=5"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "lr_find.steps" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "outputs" / "lr_find").exists() or not any((tmp_path / "outputs" / "lr_find").rglob("*.json"))


def test_cnnlab_lrfind_is_a_console_script():
    import importlib
    import tomllib

    from tests.conftest import REPO

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["cnnlab-lrfind"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_the_default_thread_setting_auto_is_chosen_as_a_training_run_chooses_it(tmp_path, monkeypatch):
    import torch

    from cnnlab.train import threads

    chosen = []
    original = threads.choose_threads
    monkeypatch.setattr(threads, "choose_threads", lambda *a: chosen.append(original(*a)) or chosen[-1])
    before = torch.get_num_threads()
    try:
        found = cnnlab.lr_find(FAST + ["lr_find.steps=20", f"hydra.run.dir={tmp_path / 'find'}"])  # num_threads=auto
        assert found["curve"]["lr"] and len(chosen) == 1 and chosen[0] >= 1
    finally:
        torch.set_num_threads(before)
