"""After training: where the model goes wrong on the test set.

Writes `confusion_matrix.png` (rows: true class, columns: predicted) and `misclassified.png` (the
test images it got wrong, most confident mistakes first, labelled true -> predicted) into the run
folder, and the same two figures as images in TensorBoard (`diagnostics/...`). The test pass that
gives test_acc (`evaluate(..., predictions=True)`) also gives each image's prediction; `diagnosis_of`
turns them into the figures' input and results.json's `per_class_acc` and `most_confused`, so all of
them agree with test_acc. matplotlib is imported only when drawing. `trainer.diagnostics=false`
turns the figures off.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import torch
import torch.nn.functional as F

from cnnlab import atomic
from cnnlab.data.loader import DeviceLoader

log = logging.getLogger("cnnlab")

GRID_IMAGES = 36  # misclassified images shown (6 x 6)
ANNOTATE_UP_TO = 20  # classes: write the counts in the confusion matrix cells up to this many
MOST_CONFUSED = 10  # (true, predicted) pairs listed in results.json, most frequent first


@dataclass
class Diagnosis:
    """The model's prediction for every test image, and the confusion matrix they make."""
    classes: Sequence[str]
    truth: torch.Tensor
    predicted: torch.Tensor
    confidence: torch.Tensor
    confusion: torch.Tensor  # int64 [true, predicted], on the CPU

    def summary(self) -> dict:
        """results.json's `per_class_acc` (class -> test accuracy, null without test images) and
        `most_confused` ([true, predicted, count], as fastai's interpretation lists them)."""
        counts = self.confusion
        per_class = {}
        for k, name in enumerate(self.classes):
            total = int(counts[k].sum())
            per_class[str(name)] = int(counts[k, k]) / total if total else None
        wrong = counts.clone()
        wrong.fill_diagonal_(0)
        flat = wrong.flatten()
        top = flat.argsort(descending=True, stable=True)[:MOST_CONFUSED]
        n = len(self.classes)
        pairs = [[str(self.classes[int(i) // n]), str(self.classes[int(i) % n]), int(flat[i])]
                 for i in top if flat[i] > 0]
        return {"per_class_acc": per_class, "most_confused": pairs}


def diagnosis_of(loader: DeviceLoader, classes: Sequence[str], predicted: torch.Tensor,
                 confidence: torch.Tensor) -> Diagnosis:
    """From predictions already made, in the loader's order (evaluate(..., predictions=True))."""
    truth = loader.y.to(predicted.device)
    return Diagnosis(classes, truth, predicted, confidence, confusion_matrix(truth, predicted, len(classes)))


def save_diagnostics(diagnosis: Diagnosis, loader: DeviceLoader, classes: Sequence[str], run_dir: Path,
                     writer) -> torch.Tensor:
    """Draw both figures of `diagnosis` (the test images come from `loader`); return the confusion matrix."""
    predicted, confidence, truth = diagnosis.predicted, diagnosis.confidence, diagnosis.truth
    confusion = diagnosis.confusion
    wrong = (predicted != truth).nonzero().flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)][:GRID_IMAGES]

    plt = _pyplot()
    figures = {
        "confusion_matrix": _draw_confusion(plt, confusion, classes),
        "misclassified": _draw_misclassified(plt, loader.x[wrong.to(loader.x.device)].cpu(), truth[wrong].cpu(),
                                             predicted[wrong].cpu(), confidence[wrong].cpu(), classes,
                                             int((predicted != truth).sum())),
    }
    for name, fig in figures.items():
        pixels = _render(fig)  # drawn once, for both the file and TensorBoard
        plt.close(fig)
        _save_png(pixels, Path(run_dir) / f"{name}.png")
        if writer is not None:
            writer.add_image(f"diagnostics/{name}", pixels, dataformats="HWC")
    return confusion


def _render(fig):
    """The figure's RGB pixels [H, W, 3] as uint8 at its own dpi (100, what savefig wrote before).
    Drawing once instead of twice (savefig, then TensorBoard's add_figure) halves the figures' cost,
    which in a sweep of small models was longer than the training itself."""
    import numpy as np

    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _save_png(pixels, path: Path) -> None:
    from PIL import Image

    # compress_level 1: a third of the default's encoding time for a few percent more bytes
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    atomic.write_bytes(path, buffer.getvalue())


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """[B, classes] probabilities; a one-logit (sigmoid) head is the probability of class 1."""
    if logits.shape[1] == 1:
        p1 = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p1, p1], dim=1)
    return F.softmax(logits, dim=1)


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    pairs = truth.long() * num_classes + predicted.long()
    return torch.bincount(pairs, minlength=num_classes ** 2).view(num_classes, num_classes).cpu()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def _draw_confusion(plt, confusion: torch.Tensor, classes: Sequence[str]):
    n = len(classes)
    size = min(4 + 0.35 * n, 16)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    counts = confusion.numpy()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    accuracy = counts.trace() / max(counts.sum(), 1)
    ax.set_title(f"confusion matrix: {counts.sum():,} test images, accuracy {accuracy:.2%}", fontsize=10)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 40:
        ax.set_xticks(range(n), [str(c) for c in classes], rotation=90 if n > 10 else 0, fontsize=8)
        ax.set_yticks(range(n), [str(c) for c in classes], fontsize=8)
    if n <= ANNOTATE_UP_TO:
        threshold = counts.max() / 2
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if counts[i, j] > threshold else "black")
    fig.tight_layout()
    return fig


def _draw_misclassified(plt, images: torch.Tensor, truth: torch.Tensor, predicted: torch.Tensor,
                        confidence: torch.Tensor, classes: Sequence[str], total_wrong: int):
    """One imshow of a tiled grid (fast) with a label over each tile, rather than one subplot per image."""
    fig, ax = plt.subplots(figsize=(9, 9.6))
    ax.axis("off")
    if len(images) == 0:
        ax.text(0.5, 0.5, "no misclassified test images", ha="center", va="center", fontsize=12)
        return fig
    grid, cols, (tile_h, tile_w, label_room) = _tile(images)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    for k in range(len(images)):
        r, c = divmod(k, cols)
        label = f"{_name(classes, truth[k])} → {_name(classes, predicted[k])} ({confidence[k]:.0%})"
        ax.text(c * tile_w + tile_w / 2, r * tile_h + label_room - 1, label, ha="center", va="bottom",
                fontsize=6, color="black")
    ax.set_title(f"misclassified test images: {len(images)} of {total_wrong}, most confident first "
                 "(true → predicted)", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.96)  # axes off: tight_layout's text measuring buys nothing
    return fig


def _tile(images: torch.Tensor):
    """[N, C, H, W] uint8 -> one [rows*T, cols*T(, 3)] array; small images scaled up so they can be seen."""
    n, c, h, w = images.shape
    scale = max(1, 48 // max(h, w))
    images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    pad = max(8, images.shape[-1] // 4)  # room for the label above each tile
    images = F.pad(images, (2, 2, pad, 2), value=255)
    tile_h, tile_w = images.shape[2], images.shape[3]
    cols = min(n, 6)
    rows = (n + cols - 1) // cols
    canvas = torch.full((c, rows * tile_h, cols * tile_w), 255, dtype=torch.uint8)
    for k in range(n):
        r, col = divmod(k, cols)
        canvas[:, r * tile_h:(r + 1) * tile_h, col * tile_w:(col + 1) * tile_w] = images[k]
    array = canvas[0].numpy() if c == 1 else canvas[:3].permute(1, 2, 0).numpy()
    return array, cols, (tile_h, tile_w, pad)


def _name(classes: List[str], index: torch.Tensor) -> str:
    name = str(classes[int(index)])
    return name if len(name) <= 12 else name[:11] + "…"
