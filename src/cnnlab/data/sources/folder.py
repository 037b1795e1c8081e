"""Your own images: one subfolder per class, or train/ and val/ (PyTorch's transfer-learning layout).

Images are decoded once, in parallel threads (PIL releases the GIL while decoding), converted to
RGB, resized to `dataset.image_size` squares and cached as uint8 tensors under
`data_dir/.cache/`, keyed by the folder's file list, sizes and modification times: a second run
skips decoding, and any change to the folder decodes again.

Layouts:
  DIR/<class>/*.jpg               20% (fixed shuffle) is the test split, val_split of the rest validates
  DIR/train/<class>, DIR/val/...  val/ validates; DIR/test/ is the test split if present, else val/
                                  doubles as test (the tutorial's hymenoptera data has no test set)
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

log = logging.getLogger("cnnlab")
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TEST_FRACTION = 0.2


def load_folder(cfg: DatasetConfig, data_dir: Path) -> Splits:
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.path={cfg.path}: no such folder. Give a folder with one subfolder per class, "
                        "or with train/ and val/ subfolders.")
    size = cfg.image_size or 64
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes = _classes(root / "train")
        train = _load_part(root / "train", classes, size, data_dir)
        val = _load_part(root / "val", classes, size, data_dir)
        test = _load_part(root / "test", classes, size, data_dir) if (root / "test").is_dir() else val
        return Splits(train_x=train[0], train_y=train[1], val_x=val[0], val_y=val[1], test_x=test[0],
                      test_y=test[1], classes=classes)
    classes = _classes(root)
    x, y = _load_part(root, classes, size, data_dir)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_test = max(1, int(round(len(x) * TEST_FRACTION))) if len(x) > 1 else 0
    test, train = order[:n_test].sort().values, order[n_test:].sort().values
    return Splits(train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test], classes=classes)


def _classes(folder: Path) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} has no class subfolders. Put the images of each class in a subfolder named "
                        "after the class (e.g. DIR/cats/*.jpg, DIR/dogs/*.jpg).")
    return classes


def _files(folder: Path, classes: list[str]) -> list[tuple[Path, int]]:
    files = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if class_dir.is_dir():
            files += [(p, label) for p in sorted(class_dir.rglob("*"))
                      if p.is_file() and p.suffix.lower() in EXTENSIONS]
    return files


def _load_part(folder: Path, classes: list[str], size: int, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    files = _files(folder, classes)
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(sorted(EXTENSIONS))}) in its class subfolders.")
    cache = _cache_path(folder, files, size, data_dir)
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        images = list(pool.map(lambda item: decode_image(item[0], size), files))
    bad = [str(path) for (path, _), image in zip(files, images) if image is None]
    if len(bad) == len(files):
        raise DataError(f"none of the {len(files)} images in {folder} could be read: they are empty, truncated "
                        "or not images.")
    if bad:
        log.warning(f"skipped {len(bad)} unreadable image(s) in {folder}: {', '.join(bad[:10])}"
                    + (" ..." if len(bad) > 10 else ""))
    kept = [(image, label) for image, (_, label) in zip(images, files) if image is not None]
    x = torch.from_numpy(np.stack([image for image, _ in kept])).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label for _, label in kept], dtype=torch.long)
    _write_cache(cache, x, y)
    return x, y


def decode_image(path: Path, size: int) -> Optional[np.ndarray]:
    """An image file as a size x size x 3 uint8 array, or None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _cache_path(folder: Path, files: list[tuple[Path, int]], size: int, data_dir: Path) -> Path:
    h = hashlib.sha1(f"{folder.resolve()}|{size}".encode())
    for path, label in files:
        stat = path.stat()
        h.update(f"{path.relative_to(folder)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return data_dir / ".cache" / f"folder-{h.hexdigest()[:16]}.pt"


def _read_cache(path: Path) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        return saved["x"], saved["y"]
    except Exception:  # noqa: BLE001 - a damaged cache is only a cache: decode again
        return None


def _write_cache(path: Path, x: torch.Tensor, y: torch.Tensor) -> None:
    """Atomically, and never fatally: an unwritable cache folder only costs a decode next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save({"x": x, "y": y}, f)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning(f"could not cache decoded images in {path.parent} ({exc}); they will be decoded again next run.")
