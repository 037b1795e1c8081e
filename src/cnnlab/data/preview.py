"""`train_batch.png`: the first training batch exactly as the model receives it, before training starts.

The batch is the loop's own first batch (epoch 1's permutation, augmented with the run's data
generator, whose state is put back afterwards so training sees the same augmentation), de-normalized
back to pixels and tiled with each image's class name above it. Drawn with PIL, not matplotlib, so it
costs milliseconds on the way to the first step; also logged to TensorBoard as `data/train_batch`.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cnnlab.data.loader import DeviceLoader
from cnnlab.errors import TrainingError, write_failure

MAX_IMAGES = 64  # 8 x 8 tiles
TILE = 64  # small images are scaled up (nearest neighbour) to about this many pixels
LABEL = 14  # pixels of label room above each tile
FILE = "train_batch.png"


def first_batch(loader: DeviceLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Epoch 1's first batch as fit() will see it; the loader and its generator are left as they were."""
    generator = loader.generator
    saved = generator.get_state() if generator is not None else None
    epoch, start = loader.epoch, loader.start_batch
    loader.set_epoch(1, 0)
    try:
        x, y = next(iter(loader))
    finally:
        if generator is not None:
            generator.set_state(saved)
        loader.epoch, loader.start_batch = epoch, start
    return x, y


def to_pixels(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalized float [N, C, H, W] -> uint8 pixels, on the CPU."""
    c = x.shape[1]
    mean_t = torch.tensor(list(mean) * c if len(mean) == 1 else list(mean), dtype=torch.float32)
    std_t = torch.tensor(list(std) * c if len(std) == 1 else list(std), dtype=torch.float32)
    x = x.detach().float().cpu().contiguous()
    pixels = (x * std_t.view(1, c, 1, 1) + mean_t.view(1, c, 1, 1)) * 255.0
    return pixels.round().clamp(0, 255).to(torch.uint8)


def draw(pixels: torch.Tensor, labels: Sequence[str], total: int):
    """A PIL image: a grid of the images (at most MAX_IMAGES) with their labels, under a title line."""
    from PIL import Image, ImageDraw

    pixels, labels = pixels[:MAX_IMAGES], list(labels)[:MAX_IMAGES]
    n, c, h, w = pixels.shape
    scale = max(1, round(TILE / max(h, w)))
    tile_h, tile_w = h * scale + LABEL + 4, max(w * scale, 48) + 4
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    title_h = 20
    canvas = Image.new("RGB", (cols * tile_w, title_h + rows * tile_h), "white")
    pen = ImageDraw.Draw(canvas)
    font = _font(10)
    pen.text((4, 4), f"first training batch as the model sees it: {n} of {total} images (augmented, "
                     "de-normalized)", fill="black", font=font)
    images = pixels.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    for k in range(n):
        r, col = divmod(k, cols)
        array = images[k].permute(1, 2, 0).numpy()
        tile = Image.fromarray(array[:, :, 0], "L") if c == 1 else Image.fromarray(np.ascontiguousarray(array[:, :, :3]), "RGB")
        x0, y0 = col * tile_w + 2, title_h + r * tile_h
        canvas.paste(tile.convert("RGB"), (x0 + (tile_w - 4 - tile.width) // 2, y0 + LABEL))
        pen.text((x0, y0 + 1), _fit(pen, str(labels[k]), font, tile_w - 4), fill="black", font=font)
    return canvas


def save_train_batch(loader: DeviceLoader, classes: Sequence[str], mean: Sequence[float],
                     std: Sequence[float], run_dir: Path, writer) -> Path:
    x, y = first_batch(loader)
    picture = draw(to_pixels(x, mean, std), [classes[int(k)] for k in y.cpu()], len(x))
    path = Path(run_dir) / FILE
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    tmp = path.with_name(f".{FILE}.tmp")
    try:
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"could not write {path}: {write_failure(exc)}. Nothing was trained yet; "
                            "free space or choose another hydra.run.dir.") from None
    writer.add_image("data/train_batch", np.asarray(picture), 0, dataformats="HWC")
    return path


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _fit(pen, text: str, font, width: int) -> str:
    """The label, cut with an ellipsis to the tile's width."""
    if pen.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and pen.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
