"""The embedded default: scikit-learn's bundled handwritten digits (UCI, 1,797 images of 8x8).

The images ship inside cnnlab as a 46 KB .npz (values rescaled from 0..16 to 0..255), so the
default run needs no download and no scikit-learn import. There is no official test split: a fixed
shuffle puts 360 images (20%) in test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.splits import Splits

DIGITS_FILE = Path(__file__).with_name("digits.npz")
TEST_SIZE = 360


def load_digits(cfg: DatasetConfig, data_dir: Path) -> Splits:
    with np.load(DIGITS_FILE) as f:
        images = torch.from_numpy(f["images"]).unsqueeze(1)  # [1797, 1, 8, 8]
        labels = torch.from_numpy(f["labels"].astype(np.int64))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return Splits(train_x=images[train], train_y=labels[train], test_x=images[test],
                  test_y=labels[test], classes=[str(d) for d in range(10)])
