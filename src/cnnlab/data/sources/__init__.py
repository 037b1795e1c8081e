"""Dataset sources: each turns files on disk (or nothing) into `Splits` of uint8 tensors.

Each source is registered with its typed config and its loader in cnnlab/data_schema.py; a loader's
module is imported only when its dataset is asked for, so the default run never pays for
torchvision or scipy.
"""
from __future__ import annotations

from pathlib import Path

from cnnlab import registry
from cnnlab.config import DatasetConfig
from cnnlab.data.splits import Splits
from cnnlab.errors import DataError


def load_source(cfg: DatasetConfig, data_dir: Path) -> Splits:
    loader = registry.get("dataset", cfg.name).load()  # `load(cfg, data_dir) -> Splits` (cnnlab/data_schema.py)
    try:
        return loader(cfg, data_dir)
    except PermissionError as exc:  # an unreadable data_dir, dataset.path or file in them
        where = exc.filename or (cfg.path if cfg.name == "folder" else data_dir)
        setting = "dataset.path" if cfg.name == "folder" and cfg.path else "data_dir"
        raise DataError(f"cannot read {where}: permission denied. Make it readable (and its folders "
                        f"searchable), or point {setting} at a copy you can read; nothing was run.") from None
