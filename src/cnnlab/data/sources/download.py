"""Find a dataset's files on disk, else let torchvision download them, else say exactly what to fetch.

Every file-based source goes through `ensure_files`: local copies first (in every folder the source
knows), then `fetch` (a torchvision dataset class with download=True, imported only there), then a
DataError listing the exact paths to fill by hand. A failed download deletes the files it created
or changed, so a half-written archive cannot poison the next run.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from cnnlab.errors import DataError

log = logging.getLogger("cnnlab")


def find_files(folders: Sequence[Path], names: Sequence[str], gz: bool = False) -> Optional[dict[str, Path]]:
    """name -> path for the first folder that holds every one of `names`, or None.

    With `gz`, `name.gz` counts too (the unpacked file is preferred: it reads faster). All files come
    from one folder so a set is never stitched together from two copies.
    """
    for folder in folders:
        found = {}
        for name in names:
            candidates = (folder / name, folder / f"{name}.gz") if gz else (folder / name,)
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                break
            found[name] = path
        else:
            return found
    return None


def ensure_files(dataset: str, folders: Sequence[Path], names: Sequence[str], *, download: bool,
                 fetch: Sequence[Callable[[], None]], written: Sequence[Path], how: str,
                 gz: bool = False, via: str = "torchvision") -> dict[str, Path]:
    """Paths of every file in `names`, found in `folders` (the first is where downloads land).

    `fetch` are the download steps (one per torchvision call: a failure removes only what its own step
    wrote, so a finished 180 MB file survives a failure of the next); `written` are the files and
    folders they write; `how` is the sentence that tells a user offline where the files come from.
    """
    found = find_files(folders, names, gz)
    if found is not None:
        return found
    if not download:
        raise DataError(_missing_message(dataset, folders[0], names, gz, "dataset.download=false", how))
    with download_lock(folders[0]):
        found = find_files(folders, names, gz)  # another job of a parallel sweep fetched them while this one waited
        if found is not None:
            return found
        _fetch(dataset, folders[0], fetch, written, names, gz, how, via)
    found = find_files(folders, names, gz)
    if found is None:
        raise DataError(_missing_message(dataset, folders[0], names, gz, f"the download with {via} did not "
                                         "produce them", how))
    return found


@contextlib.contextmanager
def download_lock(folder: Path) -> Iterator[None]:
    """One download into `folder` at a time, across this machine's processes (the jobs of a parallel
    sweep all start on a dataset that is not there yet): an exclusive flock on a file in the system's
    temporary folder named after `folder`, so that a failed download still leaves nothing in it."""
    try:
        import fcntl

        key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
        handle = open(Path(tempfile.gettempdir()) / f"cnnlab-download-{key}.lock", "a")
    except (ImportError, OSError):  # not POSIX, or no writable temporary folder: download without the lock
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _fetch(dataset: str, target: Path, fetch: Sequence[Callable[[], None]], written: Sequence[Path],
           names: Sequence[str], gz: bool, how: str, via: str) -> None:
    log.info(f"dataset={dataset}: files not found, downloading them to {target} with {via}")
    for step in fetch:
        before = _snapshot(written)
        try:
            step()
        except BaseException as exc:  # offline, proxy, HTTP error, full disk, Ctrl-C: all leave partial files
            _remove_partial_files(written, before)
            if not isinstance(exc, Exception):
                raise
            reason = f"the download failed ({_one_line(exc)})"
            raise DataError(_missing_message(dataset, target, names, gz, reason, how)) from None


def _missing_message(dataset: str, target: Path, names: Sequence[str], gz: bool, reason: str, how: str) -> str:
    files = ", ".join(str(target / (f"{n}.gz" if gz else n)) for n in names)
    unpacked = " (gzipped or unpacked)" if gz else ""
    return (f"dataset={dataset}: files not found and {reason}. Put these files in place{unpacked}: {files}. "
            f"{how} Or point cnnlab at a folder that already holds them with data_dir=DIR or the CNNLAB_DATA "
            "environment variable.")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _snapshot(paths: Sequence[Path]) -> dict[Path, tuple[int, int]]:
    """(size, mtime) of every file under `paths`; folders are recorded too, with (-1, -1)."""
    seen: dict[Path, tuple[int, int]] = {}
    for path in paths:
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            try:
                stat = p.stat()
            except OSError:
                continue
            seen[p] = (-1, -1) if p.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return seen


def _remove_partial_files(paths: Sequence[Path], before: dict[Path, tuple[int, int]]) -> None:
    """Delete files a failed download created or changed, then the folders it created and left empty."""
    after = _snapshot(paths)
    changed = [p for p, state in after.items() if before.get(p) != state]
    for p in sorted(changed, key=lambda p: len(p.parts), reverse=True):  # files before their folders
        try:
            p.rmdir() if p.is_dir() else p.unlink()
        except OSError:  # a folder that is not empty, or a file we may not delete: leave it
            pass
