"""The report's view of `trainer.histograms=true` runs (the init_activation preset): seed 001's figure.

Reads each run's activations.json (see cnnlab.train.histograms) and draws, one row per configuration
and one column per hidden layer, the activation histograms before training (epoch 0, the seed's
figure) and after the last epoch; and each weight's gradient norm per layer on a log scale, where a
vanishing signal shows as norms falling by orders of magnitude towards the input. Histograms come
from the configuration's lowest seed (a histogram has no mean over seeds); gradient norms are the mean
over its completed runs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cnnlab.report.collect import Run
from cnnlab.report.figures import FIGURES_DIR, pyplot, save_figure
from cnnlab.report.group import Configuration

ACTIVATIONS_FILE = "activations.json"


def read_activations(run: Run) -> Optional[dict]:
    """The run's activations.json, or None where it has none or it cannot be read."""
    try:
        record = json.loads((run.path / ACTIVATIONS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("epochs") else None


def recorded(configs: List[Configuration]) -> List[Tuple[Configuration, List[dict]]]:
    """Each configuration with histograms, and its runs' records, lowest seed first."""
    found = []
    for config in configs:
        runs = sorted(config.completed, key=_seed_order)
        records = [rec for rec in (read_activations(r) for r in runs) if rec is not None]
        if records:
            found.append((config, records))
    return found


def _seed_order(run: Run) -> tuple:
    seed = str(run.seed)
    return (0, int(seed), "") if seed.isdigit() else (1, 0, seed)  # 2 before 10


def grad_norms(records: List[dict], which: str) -> Tuple[List[str], List[float]]:
    """Weight names in forward order and their gradient norm, the mean over runs, at the first ("before")
    or the last ("after") recorded epoch."""
    per_name: Dict[str, List[float]] = {}
    names: List[str] = []
    for record in records:
        entry = record["epochs"][0 if which == "before" else -1]
        for name, norm in entry.get("grad_norms", {}).items():
            if name not in per_name:
                names.append(name)
            per_name.setdefault(name, []).append(norm)
    return names, [sum(per_name[n]) / len(per_name[n]) for n in names]


def gradient_table(found: List[Tuple[Configuration, List[dict]]]) -> List[str]:
    """report.md rows: per configuration, the first and last weight's gradient norm before and after training."""
    if not found:
        return []
    lines = ["| configuration | runs | grad norm, first layer (before) | last layer (before) | first/last "
             "(before) | first layer (after) | last layer (after) | first/last (after) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for config, records in found:
        cells = []
        for which in ("before", "after"):
            _, norms = grad_norms(records, which)
            first, last = (norms[0], norms[-1]) if norms else (math.nan, math.nan)
            cells += [f"{first:.2e}", f"{last:.2e}", f"{first / last:.2e}" if last else "n/a"]
        lines.append(f"| `{config.label}` | {len(records)} | " + " | ".join(cells) + " |")
    return lines


def activation_section(root: Path, configs: List[Configuration], draw: bool = True) -> List[str]:
    """report.md's section for runs with histograms (none without): the gradient table and, with draw,
    the figures, written into root/figures/."""
    found = recorded(configs)
    if not found:
        return []
    lines = ["## Activations and gradients", "",
             "Gradient norm of the first and the last weight layer on up to 1,000 validation images (mean "
             "over seeds): a first/last ratio far below 1 is a vanishing gradient; tiny norms at every "
             "layer mean the signal already died on the way forward.", ""]
    lines += gradient_table(found) + [""]
    if draw:
        out = root / FIGURES_DIR
        out.mkdir(exist_ok=True)
        for caption, path in draw_activation_figures(pyplot(), found, out):
            lines += [f"![{caption}]({FIGURES_DIR}/{path.name})", ""]
    return lines


def draw_activation_figures(plt, found: List[Tuple[Configuration, List[dict]]], out: Path) -> List[Tuple[str, Path]]:
    """Write the histogram grids and the gradient-norm plot into out/; return (caption, path) pairs."""
    drawn = [("hidden-layer activations before training (epoch 0)",
              _histogram_grid(plt, found, 0, out / "activations_before_training.png")),
             ("hidden-layer activations after the last epoch",
              _histogram_grid(plt, found, -1, out / "activations_after_training.png")),
             ("gradient norm of each layer's weights, before and after training",
              _grad_norm_plot(plt, found, out / "grad_norms.png"))]
    return drawn


def _histogram_grid(plt, found, index: int, path: Path) -> Path:
    cols = max(len(records[0]["layers"]) for _, records in found)
    fig, axes = plt.subplots(len(found), cols, figsize=(1.7 * cols + 1.5, 1.15 * len(found) + 0.6), squeeze=False)
    for row, (config, records) in enumerate(found):
        record = records[0]
        entry = record["epochs"][index]
        for col in range(cols):
            ax = axes[row][col]
            layer = record["layers"][col] if col < len(record["layers"]) else None
            h = entry["activations"].get(layer) if layer is not None else None
            if h is None:
                ax.axis("off")
                continue
            ax.stairs(h["counts"], h["edges"], fill=True)
            ax.set_yticks([])
            ax.tick_params(labelsize=5)
            if row == 0:
                ax.set_title(f"layer {col + 1}", fontsize=7)
        axes[row][0].set_ylabel(config.label.replace(",", "\n"), fontsize=5, rotation=0, ha="right", va="center")
    epoch = found[0][1][0]["epochs"][index]["epoch"]
    fig.suptitle(f"hidden-layer activations on {found[0][1][0].get('inputs', '?')} validation images, "
                 f"epoch {epoch}" + (" (before training)" if epoch == 0 else ""), fontsize=8)
    return save_figure(plt, fig, path, dpi=90)


def _grad_norm_plot(plt, found, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, which in zip(axes, ("before", "after")):
        for config, records in found:
            names, norms = grad_norms(records, which)
            shown = [(i + 1, n) for i, n in enumerate(norms) if n > 0]
            if shown:
                ax.plot(*zip(*shown), marker="o", markersize=3, label=config.label)
        ax.set_yscale("log")
        ax.set_xlabel("weight layer (input -> output)")
        ax.set_title(f"{which} training", fontsize=9)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("gradient norm (mean over seeds)")
    axes[1].legend(fontsize=6)
    return save_figure(plt, fig, path, dpi=90)
