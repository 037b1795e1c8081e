"""Files replaced whole: a reader, or a crash mid-write, sees the old file or the new one, never half.

Every file cnnlab writes into a run, a sweep, a report or a data folder goes through `replace_with`:
the bytes go to a temporary file beside the target (same folder, so the rename cannot cross file
systems), which then takes the target's name in one `os.replace`. A temporary file is named
`.NAME.<pid>.<random>.tmp`; one whose process is gone is removed by the next write of NAME.
"""
from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    try:  # Linux says it without changing it; os.umask would, for a moment, for every thread
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes its file private (0600); the file it becomes gets the mode a plain open() would give,
# so a run, cache or download on a shared folder stays as readable as the files beside it
_FILE_MODE = 0o666 & ~_umask()


def replace_with(path: PathLike, write: Callable[[BinaryIO], None], *, durable: bool = False) -> Path:
    """Call `write(f)` on a temporary file beside `path`, then rename it over `path`.

    `durable`: flush to disk before the rename, so that a power cut right after cannot leave an empty
    file under the name (checkpoints, results). An exception from `write` or from the file system leaves
    `path` as it was, removes the temporary file and propagates; callers turn it into their own message.
    """
    path = Path(path)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return path


def write_bytes(path: PathLike, data: bytes, *, durable: bool = False) -> Path:
    return replace_with(path, lambda f: f.write(data), durable=durable)


def write_text(path: PathLike, text: str, *, durable: bool = False) -> Path:
    """UTF-8, newlines as given (no translation)."""
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def remove_leftovers(path: Path) -> None:
    """The temporary files of writes of `path` that a crash abandoned; a live process's are kept."""
    try:
        leftovers = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return
    for leftover in leftovers:
        if not _written_by_live_process(leftover, path.name):
            _remove_quietly(leftover)


def _written_by_live_process(leftover: Path, name: str) -> bool:
    pid = leftover.name[len(name) + 2:].split(".")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False  # ours (a write this process abandoned), or a name from no cnnlab process
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OverflowError:
        return False
    return True


def _remove_quietly(path: PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
