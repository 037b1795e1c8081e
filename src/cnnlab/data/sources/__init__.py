"""Dataset sources: each turns files on disk (or nothing) into `Splits` of uint8 tensors.

Modules are imported only when their dataset is asked for, so the default run never pays for
torchvision or scipy.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from cnnlab.config import DatasetConfig
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError

# dataset name -> (module, function); every function is `load(cfg, data_dir) -> Splits`
SOURCES = {
    "digits": ("cnnlab.data.sources.digits", "load_digits"),
    "synthetic": ("cnnlab.data.sources.synthetic", "load_synthetic"),
    "mnist": ("cnnlab.data.sources.mnist", "load_mnist"),
    "fashion_mnist": ("cnnlab.data.sources.mnist", "load_fashion_mnist"),
    "cifar10": ("cnnlab.data.sources.cifar", "load_cifar10"),
    "cifar100": ("cnnlab.data.sources.cifar", "load_cifar100"),
    "svhn": ("cnnlab.data.sources.svhn", "load_svhn"),
    "folder": ("cnnlab.data.sources.folder", "load_folder"),
    "cats_vs_dogs": ("cnnlab.data.sources.archives", "load_cats_vs_dogs"),
    "hymenoptera": ("cnnlab.data.sources.archives", "load_hymenoptera"),
}


def load_source(cfg: DatasetConfig, data_dir: Path) -> Splits:
    module_name, function_name = SOURCES[cfg.name]
    loader = getattr(importlib.import_module(module_name), function_name)
    try:
        return loader(cfg, data_dir)
    except PermissionError as exc:  # an unreadable data_dir, dataset.path or file in them
        where = exc.filename or (cfg.path if cfg.name == "folder" else data_dir)
        setting = "dataset.path" if cfg.name == "folder" and cfg.path else "data_dir"
        raise DataError(f"cannot read {where}: permission denied. Make it readable (and its folders "
                        f"searchable), or point {setting} at a copy you can read; nothing was run.") from None
