"""From a dataset config to device-resident loaders for train, validation and test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

import torch

from cnnlab.config import DatasetConfig
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.resize import resize_images
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
    test_split: str = "test"  # where the "test" figures come from: "val" for a folder without test/
    val_from_test: bool = False  # dataset.val_from_test=true was needed: validation images are the test images

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def caveats(self) -> List[str]:
        """Warnings a run prints at start, so nobody mistakes these figures for held-out ones."""
        notes = []
        if self.val_from_test:
            notes.append("validating on the test split (dataset.val_from_test=true): best.pt, best_epoch, early "
                         "stopping and the sweep objective are chosen on the test images, so the test figures "
                         "are not held out. results.json records val_from_test: true.")
        if self.test_split != "test":
            notes.append(f"the dataset has no test split (a folder without test/): the \"test\" figures are "
                         f"measured on the {self.test_split} images, the same ones that pick the best epoch. "
                         f"results.json records test_split: {self.test_split}.")
        return notes


def load_splits(cfg: DatasetConfig, data_dir: Path) -> Splits:
    splits = load_source(cfg, data_dir)
    check_splits(splits, cfg.name)
    if cfg.classes is not None:
        splits = select_classes(splits, list(cfg.classes))
    splits = carve_validation(splits, cfg.val_split, cfg.train_size, val_from_test=cfg.val_from_test, name=cfg.name)
    check_usable(splits, cfg)
    return splits


def build_data(cfg: DatasetConfig, data_dir: Path, device: torch.device, generator: torch.Generator,
               channels_last: bool = False) -> DataBundle:
    splits = load_splits(cfg, data_dir)
    resized: dict[int, torch.Tensor] = {}  # val may be the test tensor itself: move and resize it once

    def put(x: torch.Tensor) -> torch.Tensor:
        return x.to(device, non_blocking=True)

    def put_images(x: torch.Tensor) -> torch.Tensor:
        if id(x) not in resized:
            # dataset.image_size: the in-memory sets are resized here, once; folders arrive at that size
            resized[id(x)] = resize_images(put(x), cfg.image_size) if cfg.image_size else put(x)
        return resized[id(x)]

    train_x, val_x, test_x = put_images(splits.train_x), put_images(splits.val_x), put_images(splits.test_x)
    mean, std = channel_stats(train_x)
    mean = list(cfg.mean) if cfg.mean is not None else mean
    std = list(cfg.std) if cfg.std is not None else std
    eval_batch = cfg.eval_batch_size or max(4 * cfg.batch_size, 256)

    common = dict(mean=mean, std=std, channels_last=channels_last)
    train = DeviceLoader(train_x, put(splits.train_y), cfg.batch_size, shuffle=True,
                         crop=cfg.augment.crop, flip=cfg.augment.flip, generator=generator, **common)
    val = DeviceLoader(val_x, put(splits.val_y), eval_batch, **common)
    test = DeviceLoader(test_x, put(splits.test_y), eval_batch, **common)
    return DataBundle(train=train, val=val, test=test, classes=splits.classes, shape=tuple(train_x.shape[1:]),
                      mean=mean, std=std, test_split=splits.test_split,
                      val_from_test=splits.val_from_test)
