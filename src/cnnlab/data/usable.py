"""Refuse, before any training, data a classifier cannot learn from or that is not what was asked."""
from __future__ import annotations

from cnnlab.config import DatasetConfig
from cnnlab.data.splits import Splits
from cnnlab.errors import ConfigError, DataError


def check_usable(s: Splits, cfg: DatasetConfig) -> None:
    """After classes were selected and validation carved out: two classes or more, the asked-for
    train_size, and dataset.mean/std with one value per channel."""
    if s.num_classes < 2:
        named = ", ".join(s.classes) or "none"
        if cfg.classes is not None:
            raise ConfigError(f"dataset.classes={list(cfg.classes)} keeps {s.num_classes} class ({named}); a "
                              "classifier needs at least two. List two or more class indices, or null for all.")
        where = f"dataset.path={cfg.path}" if cfg.name == "folder" else f"dataset '{cfg.name}'"
        raise DataError(f"{where} has {s.num_classes} class ({named}); a classifier needs at least two. For a "
                        "folder: one subfolder per class, two or more subfolders.")
    if cfg.train_size is not None and cfg.train_size > len(s.train_x):
        held = " after holding out dataset.val_split for validation" if cfg.val_split else ""
        raise ConfigError(f"dataset.train_size={cfg.train_size} is more than the {len(s.train_x):,} training images "
                          f"dataset '{cfg.name}' has{held}. Use at most {len(s.train_x)}, or null for all of them.")
    channels = s.shape[0]
    for name in ("mean", "std"):
        values = getattr(cfg, name)
        if values is not None and len(values) != channels:
            raise ConfigError(f"dataset.{name}={list(values)} has {len(values)} value(s), but dataset "
                              f"'{cfg.name}' has {channels} channel(s): give one value per channel, or null to "
                              "compute it from the training images.")
