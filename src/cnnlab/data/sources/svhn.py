"""SVHN (cropped digits) from `svhn/{train,test}_32x32.mat`, torchvision's layout. Label 10 means 0."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.sources.download import ensure_files
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

FILES = ["train_32x32.mat", "test_32x32.mat"]


def _read(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for damaged files
        raise DataError(f"{path} cannot be read ({exc}). Delete it so it can be downloaded again.") from None
    x = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)  # HWCN -> NCHW
    y = mat["y"].astype(np.int64).reshape(-1) % 10
    return torch.from_numpy(x), torch.from_numpy(y)


def load_svhn(cfg: DatasetConfig, data_dir: Path) -> Splits:
    def fetch() -> None:
        import torchvision.datasets

        for split in ("train", "test"):
            torchvision.datasets.SVHN(str(data_dir / "svhn"), split=split, download=True)

    paths = ensure_files(cfg.name, [data_dir / "svhn", data_dir], FILES, cfg.download, fetch,
                         "http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)")
    train_x, train_y = _read(paths["train_32x32.mat"])
    test_x, test_y = _read(paths["test_32x32.mat"])
    return Splits(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=[str(d) for d in range(10)])
