"""SVHN (cropped digits, format 2) from data_dir/svhn/{train,test}_32x32.mat, torchvision's layout.

Each .mat holds X as H x W x C x N uint8 and y as N x 1 with 10 standing for the digit 0, which is
mapped to 0 as torchvision does. The 531k "extra" images are not used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.sources.download import ensure_files
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

SPLITS = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def _read(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=("X", "y"))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for damaged files
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {exc}): it is truncated or corrupt. "
                        "Delete it and download it again.") from None
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None or x.ndim != 4 or x.shape[2] != 3 or y.size != x.shape[3]:
        raise DataError(f"{path} is not an SVHN cropped-digits file (X of H x W x 3 x N and N labels in y). "
                        "Download it again.")
    y = y.astype(np.int64).reshape(-1)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{path} holds labels outside 1..10. Download it again.")
    x = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)), dtype=np.uint8)  # HWCN -> NCHW
    return torch.from_numpy(x), torch.from_numpy(y % 10)  # 10 is the digit 0


def load_svhn(cfg: DatasetConfig, data_dir: Path) -> Splits:
    folder = data_dir / "svhn"

    def fetch(split: str):
        def step(root: Path) -> None:  # root stands for data_dir/svhn (download.py)
            import torchvision.datasets

            if (folder / SPLITS[split]).is_file():
                return  # finished by an earlier download (180 MB for train); a damaged one is refused when read

            # Downloads this split's file only; the constructor also reads it, once.
            torchvision.datasets.SVHN(str(root), split=split, download=True)
        return step

    how = "They come from http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)."
    paths = ensure_files(cfg.name, [folder, data_dir], list(SPLITS.values()), download=cfg.download,
                         base=folder, fetch=[fetch(split) for split in SPLITS], how=how)
    train_x, train_y = _read(paths[SPLITS["train"]])
    test_x, test_y = _read(paths[SPLITS["test"]])
    return Splits(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                  classes=[str(d) for d in range(10)])
