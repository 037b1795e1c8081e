"""Find a dataset's files on disk, or let torchvision download them, or say exactly what is missing."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

from cnnlab.errors import DataError


def find_file(folders: Iterable[Path], name: str) -> Optional[Path]:
    """The first of `name` or `name.gz` in `folders`."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def ensure_files(dataset: str, folders: list[Path], names: list[str], download: bool,
                 fetch: Callable[[], None], source: str) -> dict[str, Path]:
    """Paths of every file in `names`; downloads with `fetch` (torchvision) when some are missing.

    A failed download removes what it left half-written, then ends with a message listing the files
    to put in place by hand.
    """
    found = {n: find_file(folders, n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if not missing:
        return found
    target = folders[0]
    if download:
        before = _snapshot(target)
        try:
            fetch()
        except Exception as exc:  # noqa: BLE001 - offline, proxy, HTTP error: all mean "put the files there"
            _remove_new_partial_files(target, before)
            raise DataError(_missing_message(dataset, target, missing, source, f"the download failed ({_short(exc)})")) from None
        found = {n: find_file(folders, n) for n in names}
        missing = [n for n, p in found.items() if p is None]
        if not missing:
            return found
    reason = "dataset.download=false" if not download else "the download did not produce them"
    raise DataError(_missing_message(dataset, target, missing, source, reason))


def _missing_message(dataset: str, target: Path, missing: list[str], source: str, reason: str) -> str:
    files = ", ".join(str(target / n) for n in missing)
    return (f"dataset={dataset}: files not found and {reason}. Put these files there (gzipped or not): {files}. "
            f"They come from {source}. Point cnnlab at another folder with data_dir=DIR or the CNNLAB_DATA "
            "environment variable.")


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160]


def _snapshot(folder: Path) -> dict[Path, int]:
    if not folder.exists():
        return {}
    return {p: p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _remove_new_partial_files(folder: Path, before: dict[Path, int]) -> None:
    """Delete files a failed download created or changed, so they cannot poison the next run."""
    for path, size in _snapshot(folder).items():
        if before.get(path) != size:
            try:
                path.unlink()
            except OSError:
                pass
