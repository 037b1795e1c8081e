"""Shared fixtures: compose the real configs in conf/ and run them small, in-process or as the CLI."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import cnnlab.cli  # noqa: F401 - registers the schema and the run-name resolver
from cnnlab import naming
from cnnlab.config import RootConfig, validate
from cnnlab.data.sources.mnist import DEBIAN_FASHION

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
FASHION_DEBIAN = DEBIAN_FASHION  # where Debian's dataset-fashion-mnist installs the files

# Small and fast by default; tests add what they are about.
FAST = ["trainer.progress=false", "trainer.summary=false", "trainer.diagnostics=false", "device=cpu"]


def compose_config(overrides: list[str]) -> RootConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    naming.release_unused(None)  # no job runs in the dated folder a preset's own hydra.run.dir replaced
    return validate(cfg)


@pytest.fixture(autouse=True)
def _cnnlab_environment_restored():
    """A sweep's main process exports CNNLAB_PROGRAM and CNNLAB_SWEEP_ARGV for its workers; a test that
    runs a sweep in-process must not hand them to the commands later tests start on the same worker."""
    before = {k: v for k, v in os.environ.items() if k.startswith("CNNLAB_")}
    yield
    for key in [k for k in os.environ if k.startswith("CNNLAB_") and k not in before]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture
def cnnlab_log(caplog, monkeypatch):
    """caplog for cnnlab's own logger (it does not propagate to the root one, where caplog listens)."""
    logger = logging.getLogger("cnnlab")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="cnnlab")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def train_run(tmp_path):
    """Run one job in-process: `train_run(["model=mlp", ...]) -> (results, run_dir)`."""
    from cnnlab.run import run_job

    def _run(overrides: list[str], run_dir: Path | None = None):
        overrides = FAST + list(overrides)
        settings = compose_config(overrides)
        folder = run_dir or tmp_path / "run"
        folder.mkdir(parents=True, exist_ok=True)
        return run_job(settings, folder, overrides), folder

    return _run


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real command line, as a user types it (`python -m cnnlab ...`)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
