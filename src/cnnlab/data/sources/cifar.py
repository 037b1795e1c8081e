"""CIFAR-10 and CIFAR-100 from the python pickle batches (torchvision's layout, unpacked archives).

The files are Python 2 pickles: read with encoding="latin1" as torchvision does, their keys come
back as str; files re-pickled under Python 3 have bytes keys (b"data"). Both are accepted. Like
torchvision, this unpickles the files, so only use copies from a source you trust.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.sources.download import ensure_files, reuse
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

PIXELS = 3 * 32 * 32  # one row of a batch: the red, green then blue 32x32 planes


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            content = pickle.load(f, encoding="latin1")
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can raise almost any type
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {exc}): it is truncated or corrupt. "
                        "Delete it and download it again.") from None
    if not isinstance(content, dict):
        raise DataError(f"{path} is not a CIFAR python batch (a pickled dict). Delete it and download it again.")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in content.items()}


def _field(batch: dict, key: str, path: Path):
    if key not in batch:
        raise DataError(f"{path} has no '{key}' entry: it is not a file of this CIFAR version. Delete it and "
                        "download it again.")
    return batch[key]


def _read_batches(paths: list[Path], label_key: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for path in paths:
        batch = _unpickle(path)
        data = np.asarray(_field(batch, "data", path))
        y = np.asarray(_field(batch, label_key, path), dtype=np.int64).reshape(-1)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS or len(data) != len(y):
            raise DataError(f"{path} holds {data.dtype} data of shape {data.shape} and {len(y)} labels; a CIFAR "
                            f"batch holds uint8 rows of {PIXELS} values, one per label. Download it again.")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"{path} holds labels outside 0..{num_classes - 1}. Download it again.")
        images.append(data)
        labels.append(y)
    x = np.concatenate(images).reshape(-1, 3, 32, 32)
    return torch.from_numpy(x), torch.from_numpy(np.concatenate(labels))


def _class_names(path: Path, key: str) -> list[str]:
    names = _field(_unpickle(path), key, path)
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def _load(cfg: DatasetConfig, data_dir: Path, folder: str, archive: str, train: list[str], test: str,
          meta: str, label_key: str, names_key: str, torchvision_class: str) -> Splits:
    def fetch(root: Path) -> None:  # root stands for data_dir (download.py)
        import torchvision.datasets

        reuse([data_dir / archive], data_dir, root)  # an archive downloaded before: unpacked, not fetched again

        # Downloads and unpacks the archive; the constructor also reads it, once.
        getattr(torchvision.datasets, torchvision_class)(str(root), train=True, download=True)

    how = (f"They come from https://www.cs.toronto.edu/~kriz/{archive} (the python version): unpack it in "
           f"{data_dir}.")
    paths = ensure_files(cfg.name, [data_dir / folder], [*train, test, meta], download=cfg.download,
                         base=data_dir, fetch=[fetch], how=how)
    classes = _class_names(paths[meta], names_key)
    train_x, train_y = _read_batches([paths[n] for n in train], label_key, len(classes))
    test_x, test_y = _read_batches([paths[test]], label_key, len(classes))
    return Splits(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=classes)


def load_cifar10(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return _load(cfg, data_dir, "cifar-10-batches-py", "cifar-10-python.tar.gz",
                 [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta", "labels", "label_names",
                 "CIFAR10")


def load_cifar100(cfg: DatasetConfig, data_dir: Path) -> Splits:
    # The 100 fine classes; the 20 coarse superclasses ("coarse_labels") are not used.
    return _load(cfg, data_dir, "cifar-100-python", "cifar-100-python.tar.gz", ["train"], "test", "meta",
                 "fine_labels", "fine_label_names", "CIFAR100")
