"""Resuming with other settings: what a checkpoint's saved config allows to change, and how.

A resumed run compares its config with the one saved in `last.pt`, key by key:

- refused (the run would no longer be the run that was saved): the model, the data (`dataset.*`
  except the evaluation batch size, the download switch and the folder's path), `seed`, `finetune.*`,
  `optim.name`, the schedule's settings (`sched.*`), `trainer.early_stopping.monitor`,
  `trainer.test_time_flip` (the saved history's validation figures were measured the other way);
- honoured from the resume point, and announced: `optim.lr` (the schedule's lr is scaled by new/old),
  the other optimizer hyperparameters, `loss.*`, `trainer.max_epochs` (the schedule is resized, see
  `cnnlab.optim.resize_schedule`), early stopping's patience and min_delta;
- anything else (progress bars, threads, device, data_dir, ...) changes nothing saved and is silent.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple

from cnnlab.errors import ConfigError

_DATASET_FREE = {"dataset.eval_batch_size", "dataset.download", "dataset.path"}
_REFUSED = ("model.", "dataset.", "finetune.", "sched.")
_REFUSED_KEYS = {"seed", "optim.name", "trainer.early_stopping.monitor", "trainer.test_time_flip"}
_HONOURED = ("optim.", "loss.")
_HONOURED_KEYS = {"trainer.max_epochs", "trainer.early_stopping.patience", "trainer.early_stopping.min_delta"}
# optimizer settings that live in param_groups, by config key
_GROUP_KEYS = {"optim.weight_decay": "weight_decay", "optim.momentum": "momentum", "optim.betas": "betas",
               "optim.eps": "eps", "optim.alpha": "alpha"}

Change = Tuple[str, Any, Any]  # key, saved value, new value


def flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _norm(value):
    return list(value) if isinstance(value, tuple) else value


def compare(saved: dict, new: dict) -> Tuple[List[Change], List[Change]]:
    """(refused, honoured) changes between a checkpoint's config and this run's."""
    old, cur = flatten(saved or {}), flatten(new)
    refused, honoured = [], []
    for key in sorted(set(old) | set(cur)):
        if key not in old:  # a key newer than the checkpoint: nothing to compare with
            continue
        if key not in cur:  # one this config's source or family does not have (older checkpoints
            continue        # saved every source's keys): it acted in neither run
        a, b = _norm(old.get(key)), _norm(cur.get(key))
        if a == b:
            continue
        if key in _REFUSED_KEYS or (key.startswith(_REFUSED) and key not in _DATASET_FREE):
            refused.append((key, a, b))
        elif key in _HONOURED_KEYS or key.startswith(_HONOURED):
            honoured.append((key, a, b))
    return refused, honoured


def refusal(path: Path, refused: List[Change], mismatched: List[str] = ()) -> ConfigError:
    listed = "; ".join(f"{key}: saved {a!r}, now {b!r}" for key, a, b in refused)
    weights = (f" (its weights were written for a different model or class count: mismatched keys: "
               f"{', '.join(mismatched)})" if mismatched else "")
    return ConfigError(f"cannot resume from {path} with these settings: {listed}{weights}. A resumed run must keep "
                       "the model, the data, the batch size, the seed and the schedule's settings it was "
                       "started with. Drop those overrides to continue the run, or start a new run in "
                       "another hydra.run.dir (model.pretrained=<its checkpoint> starts from its weights).")


def apply(honoured: List[Change], optimizer, schedule, fresh_groups: List[dict], sched_min_lr: float,
          resized: str) -> List[str]:
    """Put the honoured changes into the optimizer and schedule just loaded from the checkpoint.
    `fresh_groups` are the param_groups built from the new config, before the checkpoint overwrote them."""
    notes = []
    for key, a, b in honoured:
        if key == "optim.lr":
            _scale_lr(optimizer, schedule, b / a)
            notes.append(f"optim.lr {a:g} -> {b:g} (the lr follows the schedule, scaled by {b / a:g})")
        elif key in _GROUP_KEYS:
            name = _GROUP_KEYS[key]
            for group, fresh in zip(optimizer.param_groups, fresh_groups):
                if name in group:
                    group[name] = fresh[name]
            notes.append(f"{key} {a!r} -> {b!r}")
        elif key == "trainer.max_epochs":
            notes.append(f"trainer.max_epochs {a} -> {b} ({resized})")
        else:
            notes.append(f"{key} {a!r} -> {b!r}")
    factor = getattr(schedule.scheduler, "lr_lambdas", [None])[0]
    if hasattr(factor, "floor"):  # cosine's min_lr is absolute: its factor follows the new base lr
        factor.floor = sched_min_lr / schedule.scheduler.base_lrs[0]
    return notes


def _scale_lr(optimizer, schedule, ratio: float) -> None:
    for group in optimizer.param_groups:
        for name in ("lr", "initial_lr", "max_lr", "min_lr"):
            if name in group:
                group[name] *= ratio
    scheduler = schedule.scheduler
    for name in ("base_lrs", "_last_lr"):
        if scheduler is not None and getattr(scheduler, name, None):
            setattr(scheduler, name, [v * ratio for v in getattr(scheduler, name)])
