"""Find a dataset's files on disk, else let torchvision download them, else say exactly what to fetch.

Every file-based source goes through `ensure_files`: local copies first (in every folder the source
knows), then `fetch` (a torchvision dataset class with download=True, imported only there), then a
DataError listing the exact paths to fill by hand.

A download writes into a private folder beside the data (`.cnnlab-download-*` in `base`), and only
its finished files are moved into place, each with one rename. So no run ever finds a half-written
file under a dataset's own name: not one on another node of a cluster reading the same shared folder
while this one downloads (the lock below is per machine), and not the next run after a download
killed midway. A failed download leaves nothing but what earlier steps finished.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from cnnlab import atomic
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
                 base: Path, fetch: Sequence[Callable[[Path], None]], how: str,
                 gz: bool = False, via: str = "torchvision") -> dict[str, Path]:
    """Paths of every file in `names`, found in `folders` (the first is where downloads land).

    `fetch` are the download steps (one per torchvision call), each given a private folder that stands
    for `base`: what a step writes there is moved into `base` when it finishes, so a finished 180 MB
    file survives a failure of the next step. `how` is the sentence that tells a user offline where
    the files come from.
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
        _fetch(dataset, folders[0], base, fetch, names, gz, how, via)
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


def _fetch(dataset: str, target: Path, base: Path, fetch: Sequence[Callable[[Path], None]],
           names: Sequence[str], gz: bool, how: str, via: str) -> None:
    log.info(f"dataset={dataset}: files not found, downloading them to {target} with {via}")
    made = [p for p in (base, *base.parents) if not p.exists()]  # removed again if nothing lands in them
    try:
        for step in fetch:
            private = None
            try:
                base.mkdir(parents=True, exist_ok=True)
                _remove_stale_downloads(base)
                private = Path(tempfile.mkdtemp(dir=base, prefix=STAGING_PREFIX))
                step(private)
                _move_into_place(private, base)
            except BaseException as exc:  # offline, proxy, HTTP error, full disk, Ctrl-C: the private folder goes
                if not isinstance(exc, Exception):
                    raise
                reason = f"the download failed ({_one_line(exc)})"
                raise DataError(_missing_message(dataset, target, names, gz, reason, how)) from None
            finally:
                if private is not None:
                    shutil.rmtree(private, ignore_errors=True)
    finally:
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty


def reuse(files: Sequence[Path], base: Path, private: Path) -> None:
    """Offer a download step the files an earlier download finished (torchvision skips a file already
    in place, checked by md5): each is hard-linked into `private` where it sits under `base`. Only
    files torchvision reads are offered, never ones it writes, since a write through the link would
    change the original in place."""
    for path in files:
        if path.is_file():
            link = private / path.relative_to(base)
            link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # no hard links on this file system: it is fetched again
                os.link(path, link)


STAGING_PREFIX = ".cnnlab-download-"
STALE_AFTER_S = 24 * 3600  # a private download folder this old belongs to a job killed long ago


def _move_into_place(private: Path, base: Path) -> None:
    """Every file under `private` to the same place under `base`, each with one atomic rename."""
    for path in sorted(private.rglob("*")):
        if path.is_dir():
            continue
        destination = base / path.relative_to(private)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # the destination is a link to another file system: copy beside it, then rename there
            with open(path, "rb") as source:
                atomic.replace_with(destination, lambda f: shutil.copyfileobj(source, f, 1 << 20))


def _remove_stale_downloads(base: Path) -> None:
    """What jobs killed in mid-download left in `base`, once no download can still be writing it."""
    for folder in base.glob(f"{STAGING_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(folder)


def _missing_message(dataset: str, target: Path, names: Sequence[str], gz: bool, reason: str, how: str) -> str:
    files = ", ".join(str(target / (f"{n}.gz" if gz else n)) for n in names)
    unpacked = " (gzipped or unpacked)" if gz else ""
    return (f"dataset={dataset}: files not found and {reason}. Put these files in place{unpacked}: {files}. "
            f"{how} Or point cnnlab at a folder that already holds them with data_dir=DIR or the CNNLAB_DATA "
            "environment variable.")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
