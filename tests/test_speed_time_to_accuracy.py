"""scripts/time_to_accuracy.py: the preset's command line and the floor's figure, the mean over seeds."""
from __future__ import annotations

import argparse
import sys

import pytest

from conftest import REPO, compose_config

sys.path.insert(0, str(REPO / "scripts"))
from time_to_accuracy import fast_command, seed_summary  # noqa: E402


def args(**given) -> argparse.Namespace:
    defaults = dict(dataset="fashion_mnist", data_dir=None, repeats=1, preset="fast", seeds=[0], fast_args=[])
    return argparse.Namespace(**{**defaults, **given})


@pytest.mark.parametrize("preset", ["fast", "fast94"])
def test_the_command_runs_the_named_preset_and_seed_with_the_users_overrides_last(preset, tmp_path):
    command = fast_command(args(preset=preset, data_dir="/data", fast_args=["trainer.max_epochs=1"]), 2, str(tmp_path))
    assert command[1:3] == ["-m", "cnnlab"]
    assert f"experiment={preset}" in command and "seed=2" in command and "data_dir=/data" in command
    assert command[-1] == "trainer.max_epochs=1"
    cfg = compose_config([c for c in command[3:] if not c.startswith("hydra.")])
    assert (cfg.experiment, cfg.seed, cfg.trainer.max_epochs, cfg.dataset.name) == (preset, 2, 1, "fashion_mnist")


def test_the_floor_is_the_mean_of_each_seeds_median_over_the_repeats():
    summary = seed_summary({0: [0.90, 0.94, 0.92], 1: [0.96], 2: [0.95, 0.97]})
    assert summary["test_acc_by_seed"] == {"0": 0.92, "1": 0.96, "2": 0.96}
    assert summary["mean_test_acc"] == pytest.approx((0.92 + 0.96 + 0.96) / 3, abs=1e-5)
