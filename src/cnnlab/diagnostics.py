"""After training: where the model goes wrong on the test set.

Writes `confusion_matrix.png` (rows: true class, columns: predicted) and `misclassified.png` (the
test images it got wrong, most confident mistakes first, labelled true -> predicted) into the run
folder, and the same two figures as images in TensorBoard (`diagnostics/...`). The test pass that
gives test_acc (`evaluate(..., predictions=True)`) also gives each image's prediction; `diagnosis_of`
turns them into the figures' input and results.json's `per_class_acc` and `most_confused`, so all of
them agree with test_acc. Both are drawn with PIL, not matplotlib, which took longer than a small
job's training. `trainer.diagnostics=false` turns the figures off.
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

    figures = {  # pixels: the same ones go to the file and to TensorBoard
        "confusion_matrix": _confusion_pixels(confusion, classes),
        "misclassified": _misclassified_pixels(loader.x[wrong.to(loader.x.device)].cpu(), truth[wrong].cpu(),
                                               predicted[wrong].cpu(), confidence[wrong].cpu(), classes,
                                               int((predicted != truth).sum())),
    }
    for name, pixels in figures.items():
        _save_png(pixels, Path(run_dir) / f"{name}.png")
        if writer is not None:
            writer.add_image(f"diagnostics/{name}", pixels, dataformats="HWC")
    return confusion


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


BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
# ColorBrewer's Blues, the anchors of matplotlib's "Blues" colour map


def _blues(values):
    """[...] in [0, 1] -> [..., 3] uint8, interpolated between BLUES as matplotlib's map is."""
    import numpy as np

    anchors = np.array([[int(h[k:k + 2], 16) for k in (1, 3, 5)] for h in BLUES], dtype=float)
    position = np.clip(values, 0, 1) * (len(BLUES) - 1)
    low = np.floor(position).astype(int).clip(0, len(BLUES) - 2)
    part = (position - low)[..., None]
    return (anchors[low] * (1 - part) + anchors[low + 1] * part).round().astype(np.uint8)


def _confusion_pixels(confusion: torch.Tensor, classes: Sequence[str]):
    """The confusion matrix as RGB pixels [H, W, 3], drawn with PIL: rows true, columns predicted, a
    colour bar, and the counts in the cells up to ANNOTATE_UP_TO classes (matplotlib took 0.28 s a job,
    0.12 s of it for those counts)."""
    import numpy as np
    from PIL import Image, ImageDraw

    n, counts = len(classes), confusion.numpy()
    cell = max(1, int(min(4 + 0.35 * n, 16) * 70) // n)  # the plot as large as the old 100-dpi figure's
    side = cell * n
    tick_font, label_font, title_font = _font(11), _font(12), _font(TITLE_PX)
    names = [str(c) for c in classes] if n <= 40 else []
    longest = int(max((tick_font.getlength(name) for name in names), default=0))
    below = (longest if n > 10 else 14) + 8 if names else 0  # room for the column names
    left, top = 24 + longest + 10, 44
    bar_x = left + side + 20
    width, height = bar_x + 18 + 60, top + side + below + 30
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    peak = max(int(counts.max()), 1)
    canvas.paste(Image.fromarray(_blues(counts / peak)).resize((side, side), Image.NEAREST), (left, top))
    draw.rectangle([left - 1, top - 1, left + side, top + side], outline="black")
    accuracy = counts.trace() / max(counts.sum(), 1)
    draw.text((width / 2, 14), f"confusion matrix: {counts.sum():,} test images, accuracy {accuracy:.2%}",
              fill="black", font=title_font, anchor="mt")
    if n <= ANNOTATE_UP_TO:
        count_font = _font(max(7, min(13, cell // 3)))
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    draw.text((left + j * cell + cell / 2, top + i * cell + cell / 2), str(counts[i, j]),
                              fill="white" if counts[i, j] > peak / 2 else "black", font=count_font, anchor="mm")
    for k, name in enumerate(names):
        centre = k * cell + cell / 2
        draw.text((left - 6, top + centre), name, fill="black", font=tick_font, anchor="rm")
        if n > 10:
            _vertical_text(canvas, (left + centre, top + side + 6 + longest / 2), name, tick_font)
        else:
            draw.text((left + centre, top + side + 6), name, fill="black", font=tick_font, anchor="mt")
    draw.text((left + side / 2, top + side + below + 6), "predicted class", fill="black", font=label_font,
              anchor="mt")
    _vertical_text(canvas, (12, top + side / 2), "true class", label_font)
    bar = _blues(np.linspace(1, 0, side))[:, None, :].repeat(18, axis=1)
    canvas.paste(Image.fromarray(bar), (bar_x, top))
    draw.rectangle([bar_x - 1, top - 1, bar_x + 18, top + side], outline="black")
    for value in sorted({round(peak * f) for f in (0, 0.25, 0.5, 0.75, 1)}):
        y = top + side - value / peak * side
        draw.line([bar_x + 18, y, bar_x + 22, y], fill="black")
        draw.text((bar_x + 25, y), str(value), fill="black", font=tick_font, anchor="lm")
    return np.asarray(canvas)


def _vertical_text(canvas, centre, text: str, font) -> None:
    """Text turned 90 degrees anticlockwise (read bottom to top), centred on `centre`."""
    from PIL import Image, ImageDraw

    strip = Image.new("L", (int(font.getlength(text)) + 4, font.size + 6), 0)
    ImageDraw.Draw(strip).text((2, 2), text, fill=255, font=font)
    strip = strip.rotate(90, expand=True)
    x, y = int(centre[0] - strip.width / 2), int(centre[1] - strip.height / 2)
    canvas.paste((0, 0, 0), (x, y, x + strip.width, y + strip.height), mask=strip)


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
    """matplotlib's copy of DejaVu Sans (it has the arrow), found without importing matplotlib (0.2 s);
    else PIL's own scalable font."""
    import importlib.util

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            return ImageFont.truetype(str(Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _name(classes: List[str], index: torch.Tensor) -> str:
    name = str(classes[int(index)])
    return name if len(name) <= 12 else name[:11] + "…"
