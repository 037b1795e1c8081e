"""cnnlab as an installed package: a wheel holds conf/ and its command runs from any folder."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import FAST, REPO


@pytest.mark.slow
def test_a_wheel_installed_into_a_fresh_environment_runs_a_job_from_any_folder(tmp_path):
    # build from a copy, so the checkout gets no build/ or egg-info
    source = tmp_path / "source"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name if source.exists() else _mkdir(source) / name)
    for name in ("src", "conf"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("cnnlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("cnnlab/conf/", 1)[1] for n in names if n.startswith("cnnlab/conf/")}
    assert shipped == {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml")}
    assert "cnnlab/data/sources/digits.npz" in names

    # a fresh environment that borrows this one's packages (torch is not installed again) but not cnnlab
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONWARNINGS"] = "ignore"
    where = subprocess.run([str(python), "-c", "import cnnlab; print(cnnlab.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))  # the wheel's copy, not the checkout
    cnnlab = env_dir / "bin" / "cnnlab"
    done = subprocess.run([str(cnnlab), *FAST, "trainer.max_epochs=1", "trainer.num_threads=1"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [results] = elsewhere.glob("outputs/*/*/results.json")
    assert json.loads(results.read_text())["status"] == "completed"
    version = subprocess.run([str(cnnlab), "--version"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert version.stdout.startswith("cnnlab 0.1.0")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
