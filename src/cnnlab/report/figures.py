"""The report's PNGs: per configuration, accuracy and loss per epoch, training vs validation (the seeds'
two-panel figures); and one overlay of every configuration's validation curves.

Several seeds of one configuration are drawn as their mean with a +/- std band. matplotlib is
imported here, with the Agg backend, only when figures are drawn.
"""
from __future__ import annotations

import math
import io
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cnnlab import atomic
from cnnlab.report.group import Configuration

FIGURES_DIR = "figures"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+\-]")


def draw_figures(root: Path, configs: List[Configuration]) -> Dict[str, Optional[Path]]:
    """Write the PNGs under root/figures/; return label -> path ("" for the overlay)."""
    plotted = [c for c in configs if any(r.results and r.results.get("history") for r in c.completed)]
    if not plotted:
        return {}
    plt = pyplot()
    out = root / FIGURES_DIR
    out.mkdir(exist_ok=True)
    for stale in out.glob("curves_*.png"):  # from an earlier report of this folder, maybe other configurations
        stale.unlink()
    paths: Dict[str, Optional[Path]] = {"": _overlay(plt, plotted, out / "val_curves.png")}
    for i, config in enumerate(plotted, 1):
        name = f"curves_{i:02d}_{_UNSAFE.sub('_', config.label)[:80]}.png"
        paths[config.label] = _train_vs_val(plt, config, out / name)
    return paths


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def mean_curve(config: Configuration, key: str) -> Tuple[List[int], List[float], List[float]]:
    """Per epoch: the mean of `key` over the runs that reached that epoch, and its std (0 for one run)."""
    by_epoch: Dict[int, List[float]] = {}
    for run in config.completed:
        for row in (run.results or {}).get("history") or []:
            value, epoch = row.get(key), row.get("epoch")
            if isinstance(value, (int, float)) and math.isfinite(value) and isinstance(epoch, int):
                by_epoch.setdefault(int(row["epoch"]), []).append(float(value))
    epochs = sorted(by_epoch)
    means = [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]
    stds = [_std(by_epoch[e]) for e in epochs]
    return epochs, means, stds


def _std(values: List[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _plot(ax, config: Configuration, key: str, label: str, scale: float = 1.0, **style) -> None:
    epochs, means, stds = mean_curve(config, key)
    if not epochs:
        return
    means = [m * scale for m in means]
    line, = ax.plot(epochs, means, marker="o" if len(epochs) < 30 else None, markersize=3, label=label, **style)
    if any(stds):
        lo = [m - s * scale for m, s in zip(means, stds)]
        hi = [m + s * scale for m, s in zip(means, stds)]
        ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def _train_vs_val(plt, config: Configuration, path: Path) -> Path:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 4))
    for prefix, name in (("train", "training"), ("val", "validation")):
        _plot(acc, config, f"{prefix}/acc", name, 100)
        _plot(loss, config, f"{prefix}/loss", name)
    n = len(config.completed)
    fig.suptitle(_short(config.label, 110) + (f" (mean ± std of {n} runs)" if n > 1 else ""), fontsize=10)
    _finish(acc, "accuracy (%)")
    _finish(loss, "loss")
    return save_figure(plt, fig, path)


def _overlay(plt, configs: List[Configuration], path: Path) -> Path:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(11, 4.5))
    for config in configs:
        _plot(acc, config, "val/acc", _short(config.label, 50), 100)
        _plot(loss, config, "val/loss", _short(config.label, 50))
    fig.suptitle("validation curves of every configuration", fontsize=10)
    _finish(acc, "validation accuracy (%)")
    _finish(loss, "validation loss")
    return save_figure(plt, fig, path)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _finish(ax, ylabel: str) -> None:
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def save_figure(plt, fig, path: Path, dpi: int = 100) -> Path:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return atomic.write_bytes(path, buffer.getvalue())
