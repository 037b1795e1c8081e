"""Configurations: runs that differ only in `seed` form one, summarised as mean +/- std over the seeds.

A configuration is named after the config keys whose values differ between the runs of the folder
(`optim=adam,model.dropout=0.5`), so its name reads like the sweep command.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional

import yaml

from cnnlab.report.collect import Run

# Repeats of one configuration, or how it was run rather than what was trained: not part of its name.
IGNORED_KEYS = {"seed", "resume", "device", "data_dir", "trainer.progress", "trainer.summary",
                "trainer.sync_every", "trainer.num_threads", "trainer.checkpoint_every_steps",
                "trainer.checkpoint_every_s", "trainer.cache_frozen", "trainer.keep_freed_memory"}

# The numbers a report shows for each run; the gap is computed, the rest are read from results.json.
METRICS = ("params", "trainable_params", "best_val_acc", "best_epoch", "final_train_acc", "gap",
           "test_acc", "test_top5_acc", "train_seconds")


@dataclass
class Stat:
    mean: float
    std: Optional[float]  # sample std (n - 1); None for a single run
    n: int


@dataclass
class Configuration:
    label: str
    settings: Dict[str, str]  # the differing keys and this configuration's values
    runs: List[Run]

    @property
    def completed(self) -> List[Run]:
        return [r for r in self.runs if r.completed]

    @property
    def not_completed(self) -> List[Run]:
        return [r for r in self.runs if not r.completed]

    def values(self, metric: str) -> List[float]:
        """The metric of each completed run that has it, in run order."""
        return [v for v in (run_metric(r, metric) for r in self.completed) if v is not None]

    def stat(self, metric: str) -> Optional[Stat]:
        values = self.values(metric)
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else None
        return Stat(statistics.fmean(values), std, len(values))


def run_metric(run: Run, metric: str) -> Optional[float]:
    results = run.results or {}
    if metric == "gap":  # how far training accuracy ran ahead of validation at the last epoch
        train, val = results.get("final_train_acc"), results.get("final_val_acc")
        return train - val if _is_number(train) and _is_number(val) else None
    value = results.get(metric)
    return float(value) if _is_number(value) else None


def differing_keys(runs: List[Run]) -> List[str]:
    """Keys (besides seed) whose value is not the same in every run, in the order they were typed."""
    keys: List[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys and k not in IGNORED_KEYS]
    return [k for k in keys if len({_normal(r.value(k)) for r in runs}) > 1]


def group_runs(runs: List[Run]) -> List[Configuration]:
    """One Configuration per distinct setting of the differing keys, in the order the sweep ran them."""
    keys = differing_keys(runs)
    groups: Dict[tuple, Configuration] = {}
    for run in runs:
        settings = {k: run.value(k) for k in keys}
        ident = tuple(_normal(v) for v in settings.values())
        if ident not in groups:
            groups[ident] = Configuration(_label(settings, run), settings, [])
        groups[ident].runs.append(run)
    return list(groups.values())


def _label(settings: Dict[str, str], run: Run) -> str:
    if settings:
        return ",".join(f"{k}={v}" for k, v in settings.items())
    results = run.results or {}  # nothing differs: name it after what it trained
    parts = [results.get(k) for k in ("model", "dataset", "optim")]
    return " / ".join(str(p) for p in parts if p) or run.path.name


def _normal(value: str):
    """`0` and `0.0`, `False` and `false` are one value: compare them as YAML reads them."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float, bool, str, type(None))) else value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
