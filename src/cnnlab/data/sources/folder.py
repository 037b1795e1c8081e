"""Your own images: one subfolder per class, or train/ and val/ (PyTorch's transfer-learning layout).

Layouts (hidden files and folders are ignored; a class folder may have subfolders of its own):
  DIR/<class>/*.jpg       a fixed 20% of each class is the test split; val_split of the rest validates
  DIR/train/<class>/...   val/ (or valid/, validation/) validates and test/ is the test split. Without
  DIR/val/<class>/...     test/, val/ doubles as test: the tutorial's hymenoptera data has no test set,
                          so its "test" numbers are validation numbers. Without val/, val_split of train
                          validates; without both, a fixed 20% of train is the test split.

Images are decoded once, in parallel threads (PIL releases the GIL while decoding and resizing): the
shorter side is scaled to `dataset.image_size` (null = 64), the center cropped to a square, and the
result kept as uint8 with 1 channel when every image is grayscale, else 3 (RGB, alpha dropped).
The tensors are cached in data_dir/.cache/folder-*.pt, keyed by the folder, the size and every
file's name, size and modification time: a second run skips decoding, and any change decodes again.
"""
from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from cnnlab import atomic
from cnnlab.config import DatasetConfig
from cnnlab.data.decode import decode_image  # shared with cnnlab-predict: both see the same pixels
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

log = logging.getLogger("cnnlab")
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DEFAULT_IMAGE_SIZE = 64
TEST_FRACTION = 0.2
VAL_FOLDERS = ("val", "valid", "validation")
CACHE_FORMAT = 2  # bump when decoding changes, so caches written by older code are not reused

Files = list[tuple[Path, int]]  # (image file, class index)


@dataclass
class Listing:
    root: Path
    classes: list[str]
    parts: dict[str, Files]  # "train", and "val" / "test" when there are such images
    folders: dict[str, Path]  # where each part's files live, for messages
    test_is_val: bool = False  # train/ + val/ without test/: val doubles as the test split


def load_folder(cfg: DatasetConfig, data_dir: Path) -> Splits:
    if not cfg.path:
        raise DataError("dataset=folder needs the folder of images: add dataset.path=DIR.")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.path={cfg.path}: no such folder. Give a folder with one subfolder per class, "
                        "or with train/ and val/ subfolders.")
    size = cfg.image_size or DEFAULT_IMAGE_SIZE
    listing = scan_folder(root)
    cache = _cache_file(data_dir, root, size, listing)
    decoded = _read_cache(cache)
    if decoded is None:
        decoded = _decode_parts(listing, size)
        _write_cache(cache, decoded)
    if decoded["skipped"]:
        names = decoded["skipped"]
        log.warning(f"skipped {len(names)} unreadable image(s) in {root} (empty, truncated or not images): "
                    + ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else ""))
    parts = decoded["parts"]
    val = parts.get("val")
    test = val if listing.test_is_val else parts["test"]
    return Splits(train_x=parts["train"]["x"], train_y=parts["train"]["y"], test_x=test["x"], test_y=test["y"],
                  val_x=val["x"] if val else None, val_y=val["y"] if val else None, classes=listing.classes,
                  test_split="val" if listing.test_is_val else "test")


# ---------------------------------------------------------------- listing the files
def scan_folder(root: Path) -> Listing:
    """Classes and the files of each split, in a fixed order; nothing is decoded."""
    walker = _Walker(root)
    try:
        return _scan(root, walker)
    finally:
        walker.warn()


def _scan(root: Path, walker: "_Walker") -> Listing:
    train_dir = root / "train"
    if not train_dir.is_dir():  # one subfolder per class
        classes = _class_names(root)
        train, test = _hold_out(root, _list_images(root, classes, every_class=True, walker=walker), TEST_FRACTION)
        return Listing(root, classes, {"train": train, "test": test}, {"train": root, "test": root})
    classes = _class_names(train_dir)
    train = _list_images(train_dir, classes, every_class=True, walker=walker)
    listing = Listing(root, classes, {"train": train}, {"train": train_dir})
    val_dir = next((root / n for n in VAL_FOLDERS if (root / n).is_dir()), None)
    for part, folder in (("val", val_dir), ("test", root / "test")):
        if folder is not None and folder.is_dir():
            listing.parts[part] = _list_images(folder, classes, every_class=False, walker=walker)
            listing.folders[part] = folder
    if "test" not in listing.parts:
        if "val" in listing.parts:
            listing.test_is_val = True  # as in the transfer-learning tutorial: no held-out test set
        else:
            listing.parts["train"], listing.parts["test"] = _hold_out(train_dir, listing.parts["train"],
                                                                      TEST_FRACTION)
            listing.folders["test"] = train_dir
    return listing


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(EXTENSIONS)


def _loops_back(entry: Path, folder: Path, quiet: bool = False) -> bool:
    """A symlink to the folder it sits in or to one above it (`loop -> .`): not a class, a cycle."""
    if not entry.is_symlink():
        return False
    target, here = Path(os.path.realpath(entry)), Path(os.path.realpath(folder))
    if target == here or target in here.parents:
        if not quiet:
            log.warning(f"ignoring {entry}: a symlink to {target}, which holds it (it would list the dataset "
                        "again).")
        return True
    return False


def _class_names(folder: Path) -> list[str]:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and not _loops_back(p, folder)]
    classes = sorted(p.name for p in entries if p.is_dir())
    if classes:
        return classes
    if any(_is_image(p.name) for p in entries):
        raise DataError(f"{folder} holds images but no class subfolders. Put the images of each class in a "
                        f"subfolder named after the class, e.g. {folder}/cats/1.jpg and {folder}/dogs/1.jpg.")
    raise DataError(f"{folder} is empty or has no class subfolders. Put the images of each class in a subfolder "
                    "named after the class, or use train/<class>/ and val/<class>/ subfolders.")


class _Walker:
    """Walks class folders so that each image file is found once, however many paths lead to it.

    A symlinked folder is followed only when it leads out of the dataset (images kept on another disk);
    one that leads back into it (`cats/up -> ..`, `cats/more -> ../dogs`) would loop or give one image
    two labels and put it in two splits, so it is skipped. A file reachable by two paths (a symlink to
    an image, a folder linked from outside twice) is used once, under the path found first.
    """

    def __init__(self, root: Path):
        self.root = os.path.realpath(root)
        self.files: dict[str, Path] = {}  # real path -> the path it is used under
        self.dirs: set[str] = set()  # real paths of the folders walked
        self.loops: list[Path] = []  # symlinked folders not followed
        self.duplicates: list[tuple[Path, Path]] = []  # (path not used, the path used for the same file)

    def images(self, top: Path) -> list[Path]:
        found = []
        for parent, dirs, names in os.walk(top, followlinks=True):
            real_parent = os.path.realpath(parent)
            if real_parent in self.dirs:
                dirs[:] = []
                continue
            self.dirs.add(real_parent)
            kept = []
            for d in sorted(d for d in dirs if not d.startswith(".")):
                path = os.path.join(parent, d)
                if os.path.islink(path) and self._inside(os.path.realpath(path)):
                    self.loops.append(Path(path))
                    continue
                kept.append(d)
            dirs[:] = kept
            for n in sorted(n for n in names if _is_image(n)):
                path = Path(parent, n)
                real = os.path.realpath(path)
                if real in self.files:
                    self.duplicates.append((path, self.files[real]))
                    continue
                self.files[real] = path
                found.append(path)
        return found

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def warn(self) -> None:
        if self.loops:
            names = [str(p) for p in self.loops]
            log.warning(f"did not follow {len(names)} symlinked folder(s) that lead back into {self.root} (each "
                        "image is used once, under its own class): " + ", ".join(names[:5])
                        + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
        if self.duplicates:
            pairs = [f"{a} (= {b})" for a, b in self.duplicates]
            log.warning(f"{len(pairs)} image file(s) are reachable by more than one path; each is used once, "
                        "under the path found first: " + ", ".join(pairs[:5])
                        + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""))


def _list_images(folder: Path, classes: list[str], every_class: bool, walker: Optional[_Walker] = None) -> Files:
    """Image files under folder/<class>/ (recursively), sorted; every class must have one if `every_class`."""
    present = sorted(p.name for p in folder.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and not _loops_back(p, folder, quiet=True))
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise DataError(f"{folder} has class folders that train/ lacks: {', '.join(unknown)}. Every class needs "
                        "training images: add them to train/ or remove these folders.")
    walker = walker or _Walker(folder)
    files: Files = []
    for label, name in enumerate(classes):
        found = walker.images(folder / name)
        if every_class and not found:
            raise DataError(f"{folder / name} holds no images ({', '.join(EXTENSIONS)}). Add images to it or "
                            "remove the folder.")
        files += [(p, label) for p in sorted(found)]
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(EXTENSIONS)}) in its class subfolders.")
    return files


def _hold_out(folder: Path, files: Files, fraction: float) -> tuple[Files, Files]:
    """A fixed part of each class for testing: the same files every run, at least one per class of 2+."""
    by_class: dict[int, Files] = {}
    for f in files:
        by_class.setdefault(f[1], []).append(f)
    generator = torch.Generator().manual_seed(0)
    keep, held = [], []
    for label in sorted(by_class):
        members = by_class[label]
        n_held = min(len(members) - 1, max(1, round(len(members) * fraction)))
        order = torch.randperm(len(members), generator=generator).tolist()
        held_idx = set(order[:n_held])
        held += [f for i, f in enumerate(members) if i in held_idx]
        keep += [f for i, f in enumerate(members) if i not in held_idx]
    if not held:
        raise DataError(f"{folder} has too few images for a test split: give a class at least 2 images, or "
                        "add a test/ folder next to train/.")
    return keep, held


# ---------------------------------------------------------------- decoding
def _try_decode(path: Path, size: int) -> Union[np.ndarray, str]:
    try:
        return decode_image(path, size)
    except Exception as exc:  # noqa: BLE001 - PIL's many format plugins raise many types on bad files
        return f"{type(exc).__name__}: {exc}"


def _decode_parts(listing: Listing, size: int) -> dict:
    """{"parts": {part: {"x": uint8 [N,C,S,S], "y": int64 [N]}}, "skipped": [unreadable files]}."""
    unique = sorted({path for files in listing.parts.values() for path, _ in files})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=cores) as pool:  # decoding is CPU-bound: one thread per core
        results = dict(zip(unique, pool.map(_try_decode, unique, repeat(size))))
    bad = {p for p, r in results.items() if isinstance(r, str)}
    if len(bad) == len(unique):
        raise DataError(f"none of the {len(unique)} images in {listing.root} could be read (the first: "
                        f"{unique[0].relative_to(listing.root)}, {results[unique[0]]}). Check that they are image "
                        "files.")
    gray = all(r.ndim == 2 for r in results.values() if not isinstance(r, str))

    def chw(image: np.ndarray) -> np.ndarray:
        if gray:
            return image[None]
        return np.repeat(image[None], 3, axis=0) if image.ndim == 2 else image.transpose(2, 0, 1)

    parts = {}
    for part, files in listing.parts.items():
        kept = [(path, label) for path, label in files if path not in bad]
        if not kept:
            raise DataError(f"none of the {len(files)} images in {listing.folders[part]} could be read: they are "
                            "empty, truncated or not images.")
        x = torch.from_numpy(np.stack([chw(results[path]) for path, _ in kept]))
        parts[part] = {"x": x, "y": torch.tensor([label for _, label in kept], dtype=torch.long)}
    return {"parts": parts, "skipped": [str(p.relative_to(listing.root)) for p in sorted(bad)]}


# ---------------------------------------------------------------- cache
def _cache_file(data_dir: Path, root: Path, size: int, listing: Listing) -> Path:
    """data_dir/.cache/folder-<where>-<what>.pt: <where> names the folder and size, <what> its content."""
    where = hashlib.sha1(f"{root.resolve()}|{size}".encode()).hexdigest()[:12]
    what = hashlib.sha1(f"{CACHE_FORMAT}|{listing.classes}|{listing.test_is_val}\n".encode())
    for part, files in sorted(listing.parts.items()):
        for path, label in files:
            stat = path.stat()
            what.update(f"{part}|{path.relative_to(root)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return data_dir / ".cache" / f"folder-{where}-{what.hexdigest()[:16]}.pt"


def _read_cache(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        if saved.get("format") == CACHE_FORMAT:
            return saved
    except Exception as exc:  # noqa: BLE001 - a damaged cache is only a cache: decode again
        log.warning(f"ignoring the unreadable cache {path} ({type(exc).__name__}); decoding the images again.")
    return None


def _write_cache(path: Path, decoded: dict) -> None:
    """Atomically (temp file + rename), and never fatally; older caches of the same folder are removed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.replace_with(path, lambda f: torch.save({"format": CACHE_FORMAT, **decoded}, f))
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
        log.warning(f"could not cache the decoded images in {path.parent} ({exc}); they are decoded again next run.")
        return
    for old in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.pt"):
        if old != path:
            old.unlink(missing_ok=True)
