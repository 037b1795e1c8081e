"""Can this config continue that checkpoint? Refused by name before any state is loaded.

The optimizer's and the schedule's state only fit their own kind (Adam's moments mean nothing to SGD),
and a checkpoint saved mid-epoch holds a position counted in batches of the epoch's permutation,
which another batch size or another training set would shift.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from cnnlab.errors import ConfigError

SAME_KIND = ("optim.name", "sched.name")
SAME_MID_EPOCH = ("dataset.name", "dataset.batch_size", "dataset.train_size", "dataset.val_split",
                  "dataset.classes")


def check_resumable(saved_config: Optional[dict], cfg: Any, path: Path, progress: Optional[dict]) -> None:
    if not isinstance(saved_config, dict):
        return  # an older checkpoint without its config: the weights' shapes are still checked
    changed = [k for k in SAME_KIND if _get(saved_config, k) != _attr(cfg, k)]
    if changed:
        was = " ".join(f"{k.split('.')[0]}={_get(saved_config, k)}" for k in changed)
        raise ConfigError(f"cannot resume from {path} with {' '.join(f'{k}={_attr(cfg, k)}' for k in changed)}: "
                          f"it was written with {was}, whose state the new one cannot continue. Resume with {was}, "
                          "or start a new run in another hydra.run.dir (model.pretrained=PATH starts from its "
                          "weights).")
    if progress:
        moved = [k for k in SAME_MID_EPOCH if _get(saved_config, k) != _attr(cfg, k)]
        if moved:
            was = " ".join(f"{k}={_show(_get(saved_config, k))}" for k in moved)
            raise ConfigError(f"cannot resume from {path} with {' '.join(f'{k}={_show(_attr(cfg, k))}' for k in moved)}"
                              f": it was saved mid-epoch (epoch {progress.get('epoch')}, step "
                              f"{progress.get('batch')}) with {was}, and the position inside the epoch counts "
                              f"those batches. Resume with {was}; other values can change once an epoch ended.")


def _get(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _attr(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = getattr(node, part, None)
    return list(node) if isinstance(node, (list, tuple)) else node


def _show(value: Any) -> str:
    return "null" if value is None else str(value).replace(" ", "")
