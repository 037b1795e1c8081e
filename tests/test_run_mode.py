"""Run or sweep from `-m` without Hydra's extra compose (run_mode.py), and Hydra's own answer wherever
something other than the command line could set hydra.mode."""
import json
from pathlib import Path

import pytest
from hydra._internal.hydra import Hydra

from cnnlab import run_mode
from conftest import run_cli

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_no_config_file_sets_hydra_mode_so_the_command_line_decides():
    assert run_mode.files_setting_a_mode(CONF) == []
    assert run_mode.mode_from_command_line(["model=mlp", "optim=sgd,adam", "-m", "hydra/launcher=auto"], CONF)


@pytest.mark.parametrize("arg", ["hydra.mode=MULTIRUN", "+hydra.mode=RUN", "hydra.searchpath=[file:///x]",
                                 "--config-dir=/x", "-cd", "--config-name", "-cp=/x"])
def test_anything_that_could_bring_a_mode_leaves_it_to_hydra(arg):
    assert not run_mode.mode_from_command_line(["model=mlp", arg], CONF)


def test_a_config_file_with_a_mode_leaves_it_to_hydra(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "always_sweep.yaml").write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n")
    assert run_mode.files_setting_a_mode(tmp_path) == [tmp_path / "experiment" / "always_sweep.yaml"]
    assert not run_mode.mode_from_command_line(["model=mlp"], tmp_path)


def test_install_skips_the_compose_only_when_the_command_line_decides(monkeypatch):
    original = getattr(Hydra.get_mode, "original", Hydra.get_mode)
    monkeypatch.setattr(Hydra, "get_mode", original)
    run_mode.install(CONF, ["model=mlp"])
    assert Hydra.get_mode is not original
    assert Hydra.get_mode(object(), "config", ["model=mlp"]) is None  # no compose: `object()` has no loader
    run_mode.install(CONF, ["hydra.mode=MULTIRUN"])
    assert Hydra.get_mode is original


def test_hydra_mode_on_the_command_line_still_makes_a_sweep(tmp_path):
    args = ["hydra.mode=MULTIRUN", "model=mlp", "trainer.max_epochs=1", "dataset.train_size=128",
            "optim=sgd,adam", f"hydra.sweep.dir={tmp_path / 'sweep'}", "trainer.diagnostics=false"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/results.json"))
    assert jobs == ["optim=adam", "optim=sgd"]
    assert all(json.loads(p.read_text())["status"] == "completed" for p in (tmp_path / "sweep").glob("*/results.json"))
