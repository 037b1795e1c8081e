"""Hydra's flags as Hydra documents them, cnnlab's version, and one message under torchrun."""
import os
import subprocess
import sys
import tomllib

import pytest

import cnnlab
from conftest import FAST, REPO


def test_the_version_is_the_packages():
    with open(REPO / "pyproject.toml", "rb") as f:
        assert cnnlab.__version__ == tomllib.load(f)["project"]["version"]


def _complete(tmp_path, line: str) -> list:
    """Tab completion in bash, set up as Hydra documents it: eval "$(cnnlab -sc install=bash)"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / "cnnlab"  # what `pip install` puts on PATH
    program.write_text(f"#!{sys.executable}\nimport sys\nfrom cnnlab.cli import main\nsys.exit(main())\n")
    program.chmod(0o755)
    script = f"""
eval "$(cnnlab --shell-completion install=bash)"
COMP_LINE='{line}'
COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
hydra_bash_completion
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout.split()


@pytest.mark.slow
def test_bash_tab_completion_offers_presets_and_settings(tmp_path):
    assert _complete(tmp_path, "cnnlab optim=ad") == ["optim=adagrad", "optim=adam", "optim=adamw"]
    assert _complete(tmp_path, "cnnlab model=lecture_cnn trainer.max_") == ["trainer.max_epochs="]
    assert not list(tmp_path.glob("outputs"))  # completing runs nothing


@pytest.mark.slow
def test_under_torchrun_a_bad_input_is_one_message_from_rank_0_and_exit_code_2(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cnnlab",
               *FAST, "trainer.max_epochs=1", "optim.lr=inf", f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert out.count("cnnlab: error: ") == 1 and "optim.lr=inf is not allowed" in out, out
    # torchrun's own summary (its process, not cnnlab's) names rank 0 and cnnlab's exit code as the cause
    cause = out.split("Root Cause", 1)[-1]
    assert "rank      : 0" in cause and "exitcode  : 2" in cause, out


def test_a_bug_inside_a_job_is_not_called_a_mistake_in_the_input(tmp_path, monkeypatch):
    """Only input errors become exit 2; an exception from the job itself keeps Hydra's report, exit 1."""
    from test_bad_inputs import TINY, _cwd, _main
    import cnnlab.run

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the job")

    monkeypatch.setattr(cnnlab.run, "run_job", broken)
    with _cwd(tmp_path):
        code, out = _main([*TINY, f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == 1 and "RuntimeError: a bug in the job" in out and "cnnlab: error" not in out
