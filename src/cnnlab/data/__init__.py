"""From a dataset config to device-resident loaders for train, validation and test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.sources import load_source
from cnnlab.data.splits import Splits, carve_validation, channel_stats, check_splits, select_classes
from cnnlab.data.usable import check_usable


@dataclass
class DataBundle:
    train: DeviceLoader
    val: DeviceLoader
    test: DeviceLoader
    classes: List[str]
    shape: tuple  # (C, H, W)
    mean: List[float]
    std: List[float]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_splits(cfg: DatasetConfig, data_dir: Path) -> Splits:
    splits = load_source(cfg, data_dir)
    check_splits(splits, cfg.name)
    if cfg.classes is not None:
        splits = select_classes(splits, list(cfg.classes))
    splits = carve_validation(splits, cfg.val_split, cfg.train_size)
    check_usable(splits, cfg)
    return splits


def build_data(cfg: DatasetConfig, data_dir: Path, device: torch.device, generator: torch.Generator,
               channels_last: bool = False) -> DataBundle:
    splits = load_splits(cfg, data_dir)
    mean, std = channel_stats(splits.train_x)
    mean = list(cfg.mean) if cfg.mean is not None else mean
    std = list(cfg.std) if cfg.std is not None else std
    eval_batch = cfg.eval_batch_size or max(4 * cfg.batch_size, 256)

    def put(x: torch.Tensor) -> torch.Tensor:
        return x.to(device, non_blocking=True)

    common = dict(mean=mean, std=std, channels_last=channels_last)
    train = DeviceLoader(put(splits.train_x), put(splits.train_y), cfg.batch_size, shuffle=True,
                         crop=cfg.augment.crop, flip=cfg.augment.flip, generator=generator, **common)
    val = DeviceLoader(put(splits.val_x), put(splits.val_y), eval_batch, **common)
    test = DeviceLoader(put(splits.test_x), put(splits.test_y), eval_batch, **common)
    return DataBundle(train=train, val=val, test=test, classes=splits.classes, shape=splits.shape,
                      mean=mean, std=std)
