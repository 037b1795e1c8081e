"""CIFAR-10 and CIFAR-100 from the python pickle batches (torchvision's layout)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.sources.download import ensure_files
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")  # the files are Python 2 pickles of numpy arrays
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({exc}). Delete it so it can be downloaded again.") from None


def _images(batches: list[dict]) -> torch.Tensor:
    data = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.uint8))


def _load(cfg: DatasetConfig, data_dir: Path, folder: str, train: list[str], test: str, meta: str,
          label_key: str, names_key: str, torchvision_class: str) -> Splits:
    def fetch() -> None:
        import torchvision.datasets

        getattr(torchvision.datasets, torchvision_class)(str(data_dir), train=True, download=True)

    names = [*train, test, meta]
    paths = ensure_files(cfg.name, [data_dir / folder], names, cfg.download, fetch,
                         "https://www.cs.toronto.edu/~kriz/cifar.html (the python version, unpacked)")
    train_batches = [_unpickle(paths[n]) for n in train]
    test_batch = _unpickle(paths[test])
    classes = _unpickle(paths[meta])[names_key]
    train_y = torch.tensor(np.concatenate([b[label_key] for b in train_batches]), dtype=torch.long)
    test_y = torch.tensor(test_batch[label_key], dtype=torch.long)
    return Splits(train_x=_images(train_batches), train_y=train_y, test_x=_images([test_batch]), test_y=test_y,
                  classes=list(classes))


def load_cifar10(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return _load(cfg, data_dir, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                 "batches.meta", "labels", "label_names", "CIFAR10")


def load_cifar100(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return _load(cfg, data_dir, "cifar-100-python", ["train"], "test", "meta", "fine_labels", "fine_label_names",
                 "CIFAR100")
