"""The README's promise: a two-line Quick start, and CI runs exactly its second line."""
import re

from conftest import REPO


def _quick_start_lines():
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands():
    lines = _quick_start_lines()
    assert len(lines) == 2
    assert "cnnlab" in lines[0] and "pytest" in lines[1]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert _quick_start_lines()[1] in ci
