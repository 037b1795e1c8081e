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

import functools
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
    confusion_figure = _draw_confusion(plt, confusion, classes)
    figures = {
        "confusion_matrix": _render(confusion_figure),  # drawn once, for both the file and TensorBoard
        "misclassified": _misclassified_pixels(loader.x[wrong.to(loader.x.device)].cpu(), truth[wrong].cpu(),
                                               predicted[wrong].cpu(), confidence[wrong].cpu(), classes,
                                               int((predicted != truth).sum())),
    }
    plt.close(confusion_figure)
    for name, pixels in figures.items():
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


MISCLASSIFIED_SIZE = (900, 960)  # pixels, as the matplotlib figure of 9 x 9.6 inches at 100 dpi was
LABEL_PX, TITLE_PX = 9, 14  # 6 pt and 10 pt type at 100 dpi


def _misclassified_pixels(images: torch.Tensor, truth: torch.Tensor, predicted: torch.Tensor,
                          confidence: torch.Tensor, classes: Sequence[str], total_wrong: int):
    """The grid of mistakes as RGB pixels [H, W, 3], drawn with PIL: the images are pixels already, and
    matplotlib spent 0.15 s a job laying out its 36 labels (a sixth of a small sweep job)."""
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = MISCLASSIFIED_SIZE
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if len(images) == 0:
        draw.text((width / 2, height / 2), "no misclassified test images", fill="black", font=_font(17), anchor="mm")
        return np.asarray(canvas)
    title = (f"misclassified test images: {len(images)} of {total_wrong}, most confident first "
             "(true → predicted)")
    draw.text((width / 2, 12), title, fill="black", font=_font(TITLE_PX), anchor="mt")
    top = 12 + TITLE_PX + 10
    cols = min(len(images), 6)
    rows = (len(images) + cols - 1) // cols
    cell_w = (width - 20) // cols
    cell_h = (height - top - 10) // max(rows, 6)
    _, c, h, w = images.shape
    scale = max(1, min((cell_w - 6) // w, (cell_h - LABEL_PX - 8) // h))  # whole pixels: nearest, never blurred
    font = _font(LABEL_PX)
    left = (width - cols * cell_w) // 2
    for k in range(len(images)):
        r, col = divmod(k, cols)
        pixels = images[k].repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
        tile = Image.fromarray(pixels[0].numpy() if c == 1 else pixels[:3].permute(1, 2, 0).numpy())
        tile.thumbnail((cell_w - 6, cell_h - LABEL_PX - 8))  # only ever shrinks: a large photo fits its cell
        x0, y0 = left + col * cell_w, top + r * cell_h
        label = f"{_name(classes, truth[k])} → {_name(classes, predicted[k])} ({confidence[k]:.0%})"
        draw.text((x0 + cell_w / 2, y0), label, fill="black", font=font, anchor="mt")
        canvas.paste(tile.convert("RGB"), (x0 + (cell_w - tile.width) // 2, y0 + LABEL_PX + 4))
    return np.asarray(canvas.crop((0, 0, width, min(height, top + rows * cell_h + 4))))  # no empty rows below


@functools.lru_cache(maxsize=None)
def _font(size: int):
    """matplotlib's DejaVu Sans (it has the arrow), else PIL's own scalable font."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def _name(classes: List[str], index: torch.Tensor) -> str:
    name = str(classes[int(index)])
    return name if len(name) <= 12 else name[:11] + "…"
