"""Checkpoints written atomically and read safely.

A checkpoint is a plain dict of tensors, numbers, strings and lists (the config as a plain dict,
never an OmegaConf object), so `torch.load(weights_only=True)` reads it and no code in a file is
ever executed.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from cnnlab import atomic
from cnnlab.errors import CnnlabError, TrainingError, write_failure

FORMAT_VERSION = 1


def save_checkpoint(state: dict, path: Path) -> None:
    """Written whole or not at all (cnnlab.atomic), and flushed to disk before it takes the name.

    A crash mid-write leaves the previous checkpoint intact; the temporary files such a crash left
    behind are removed on the next save, except those of another process that is still alive.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"could not create the checkpoint folder {path.parent}: {exc.strerror or exc}. "
                            "Choose a writable hydra.run.dir.") from None
    try:
        atomic.replace_with(path, lambda f: torch.save({"format_version": FORMAT_VERSION, **state}, f),
                            durable=True)
    except (OSError, RuntimeError) as exc:
        # torch's zip writer reports a failed write as a RuntimeError raised while handling the OSError
        cause = exc if isinstance(exc, OSError) else exc.__context__
        if not isinstance(cause, OSError):
            raise
        raise TrainingError(f"could not write checkpoint {path}: {write_failure(cause)}. Earlier checkpoints "
                            "are intact; free disk space or choose another hydra.run.dir, then continue with "
                            "resume=true.") from None


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict:
    """Read a cnnlab checkpoint without executing anything stored in it."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"checkpoint {path} does not exist.")
    with open(path, "rb") as f:
        magic = f.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):  # a zip (torch.save) or a pickle
        raise CnnlabError(f"{path} is not a readable checkpoint (not a PyTorch file: it starts with "
                          f"{magic!r}).")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CnnlabError(f"refused to load {path}: it holds objects other than tensors and plain data "
                          f"({_unpickler_reason(exc)}). cnnlab never runs code from a checkpoint; "
                          "use a checkpoint cnnlab wrote.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CnnlabError(f"{path} is not a readable checkpoint (truncated or not a PyTorch file: "
                          f"{str(exc).splitlines()[0][:200]}).") from None
    if not isinstance(state, dict) or "model" not in state or "format_version" not in state:
        raise CnnlabError(f"{path} is not a cnnlab checkpoint (no model weights or format version in it).")
    return state


def _unpickler_reason(exc: Exception) -> str:
    """The line of torch's long message that names what the file asked for (e.g. posix.system)."""
    for line in str(exc).splitlines():
        if "unsupported" in line.lower():
            return line.strip()[:200]
    return "it asks for classes or functions, not just tensors and plain data"
