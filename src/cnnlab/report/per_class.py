"""Where a configuration goes wrong: its per-class accuracy and its most confused class pairs, from
results.json's `per_class_acc` (class -> accuracy) and `most_confused` ([true, predicted, count]).

Accuracies are averaged over a configuration's completed runs; confusion counts are summed over them.
"""
from __future__ import annotations

import math
import statistics
from typing import Dict, List, Tuple

from cnnlab.report.group import Configuration

WIDE_TABLE_CLASSES = 20  # up to this many classes: one table, a row per class, a column per configuration
WIDE_TABLE_CONFIGS = 8
WORST_SHOWN = 10  # otherwise: each configuration's weakest classes
PAIRS_SHOWN = 5


def class_accuracies(config: Configuration) -> Dict[str, float]:
    """class -> mean accuracy over the runs that recorded it, in the order the first run lists them."""
    values: Dict[str, List[float]] = {}
    for run in config.completed:
        recorded = (run.results or {}).get("per_class_acc")
        if isinstance(recorded, dict):
            for name, acc in recorded.items():
                if isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc):
                    values.setdefault(str(name), []).append(float(acc))
    return {name: statistics.fmean(v) for name, v in values.items()}


def confused_pairs(config: Configuration) -> Tuple[List[Tuple[str, str, int]], int]:
    """The most confused (true, predicted, count) summed over runs, largest first, and how many runs had them."""
    counts: Dict[Tuple[str, str], int] = {}
    runs = 0
    for run in config.completed:
        pairs = (run.results or {}).get("most_confused")
        if not isinstance(pairs, list):
            continue
        runs += 1
        for pair in pairs:
            if isinstance(pair, (list, tuple)) and len(pair) == 3 and isinstance(pair[2], (int, float)):
                key = (str(pair[0]), str(pair[1]))
                counts[key] = counts.get(key, 0) + int(pair[2])
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [(t, p, n) for (t, p), n in ranked], runs


def per_class_section(configs: List[Configuration], split: str = "test") -> List[str]:
    accs = [(c, class_accuracies(c)) for c in configs]
    accs = [(c, a) for c, a in accs if a]
    confused = [(c, *confused_pairs(c)) for c in configs]
    confused = [(c, pairs, n) for c, pairs, n in confused if n]
    if not accs and not confused:
        return []
    lines = ["## Per class", ""]
    if accs:
        lines += [f"{split.capitalize()} accuracy of each class (%), the mean over a configuration's completed runs.", ""]
        classes = list(dict.fromkeys(name for _, a in accs for name in a))
        if len(classes) <= WIDE_TABLE_CLASSES and len(accs) <= WIDE_TABLE_CONFIGS:
            lines.append("| class | " + " | ".join(f"`{c.label}`" for c, _ in accs) + " |")
            lines.append("| --- |" + " --- |" * len(accs))
            for name in classes:
                cells = [f"{100 * a[name]:.2f}" if name in a else "–" for _, a in accs]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        else:
            for config, a in accs:
                worst = sorted(a.items(), key=lambda kv: kv[1])[:WORST_SHOWN]
                lines.append(f"- `{config.label}`, its {len(worst)} weakest of {len(a)} classes: "
                             + ", ".join(f"{name} {100 * v:.2f}" for name, v in worst))
        lines.append("")
    if confused:
        lines += ["Most confused (true → predicted: count, summed over the runs):", ""]
        for config, pairs, n in confused:
            shown = ", ".join(f"{t} → {p}: {count}" for t, p, count in pairs[:PAIRS_SHOWN]) or "none"
            lines.append(f"- `{config.label}` ({n} run{'s' if n != 1 else ''}): {shown}")
        lines.append("")
    return lines
