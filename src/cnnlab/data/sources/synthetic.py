"""Random images of any shape, for speed tests and smoke runs: nothing to download or decode."""
from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.splits import Splits


def load_synthetic(cfg: DatasetConfig, data_dir: Path) -> Splits:
    g = torch.Generator().manual_seed(1234)
    c, h, w = cfg.shape
    n_eval = max(1, cfg.num_samples // 4)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)
        y = torch.randint(0, cfg.num_classes, (n,), generator=g)
        return x, y

    train_x, train_y = draw(cfg.num_samples)
    val_x, val_y = draw(n_eval)
    test_x, test_y = draw(n_eval)
    return Splits(train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, test_x=test_x,
                  test_y=test_y, classes=[f"class_{i}" for i in range(cfg.num_classes)])
