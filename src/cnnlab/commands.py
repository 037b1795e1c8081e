"""Commands cnnlab prints for the user to paste back: named as they were invoked, quoted for the
shell and for Hydra's override parser."""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path


def program() -> str:
    """The command as the user invoked it: `.venv/bin/cnnlab` as typed, or this Python's `-m cnnlab`.
    The main process sets CNNLAB_PROGRAM so that workers (joblib, SLURM) print the same name."""
    if os.environ.get("CNNLAB_PROGRAM"):
        return os.environ["CNNLAB_PROGRAM"]
    if Path(sys.argv[0]).name == "cnnlab":
        return shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m cnnlab"


def hydra_quote(value: str) -> str:
    """A value as Hydra's override parser reads it back: in double quotes when it holds anything but
    letters, digits and `_-./` (a sweep job's folder `.../optim=sgd,seed=0` holds `=` and `,`).
    Inside quotes Hydra takes backslashes literally except before a quote or at the end."""
    if value and re.fullmatch(r"[A-Za-z0-9_\-./]+", value):
        return value
    escaped = re.sub(r'(\\*)("|$)', lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), value)
    return f'"{escaped}"'


def override_arg(key: str, value: str) -> str:
    """`key=value`, quoted for Hydra and then for the shell."""
    return shlex.quote(f"{key}={hydra_quote(str(value))}")
