"""MNIST and Fashion-MNIST from their IDX files (torchvision's layout, gzipped or not).

Read with numpy: 70,000 images load in a fraction of a second and torchvision is imported only to
download. Fashion-MNIST is also found where Debian's dataset-fashion-mnist package installs it.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.sources.download import ensure_files
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned bytes, 3-d (images) or 1-d (labels)


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file as a uint8 array, checked against its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read ({exc}). Delete it so it can be downloaded again.") from None
    if len(raw) < 4 + 4 * dims or int.from_bytes(raw[:4], "big") != MAGIC[dims]:
        raise DataError(f"{path} is not an IDX file of {dims}-d unsigned bytes (wrong magic number). "
                        "Delete it so it can be downloaded again.")
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: its header promises {int(np.prod(shape)):,} bytes of data, "
                        f"it holds {body.size:,}. Delete it so it can be downloaded again.")
    return body.reshape(shape)


def _load(cfg: DatasetConfig, data_dir: Path, folder: str, classes: list[str], extra: list[Path],
          torchvision_class: str, source: str) -> Splits:
    raw = data_dir / folder / "raw"

    def fetch() -> None:
        import torchvision.datasets

        getattr(torchvision.datasets, torchvision_class)(str(data_dir), train=True, download=True)
        getattr(torchvision.datasets, torchvision_class)(str(data_dir), train=False, download=True)

    paths = ensure_files(cfg.name, [raw, *extra], FILES, cfg.download, fetch, source)
    arrays = [read_idx(paths[name], 3 if "images" in name else 1) for name in FILES]
    train_x, train_y, test_x, test_y = (torch.from_numpy(a.copy()) for a in arrays)
    return Splits(train_x=train_x.unsqueeze(1), train_y=train_y.long(), test_x=test_x.unsqueeze(1),
                  test_y=test_y.long(), classes=classes)


def load_mnist(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return _load(cfg, data_dir, "MNIST", [str(d) for d in range(10)], [], "MNIST",
                 "http://yann.lecun.com/exdb/mnist/ (or torchvision's mirrors)")


def load_fashion_mnist(cfg: DatasetConfig, data_dir: Path) -> Splits:
    return _load(cfg, data_dir, "FashionMNIST", FASHION_CLASSES, [DEBIAN_FASHION], "FashionMNIST",
                 "https://github.com/zalandoresearch/fashion-mnist (or Debian's dataset-fashion-mnist package)")
