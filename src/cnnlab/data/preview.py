"""`train_batch.png`: the first training batch exactly as the model receives it.

The batch is the loop's own first batch (epoch 1's permutation, augmented with the run's data
generator, whose state is put back afterwards so training sees the same augmentation), de-normalized
back to pixels and tiled with each image's class name above it. Drawn with PIL, not matplotlib, on
TensorBoard's thread while the first epoch trains; also logged to TensorBoard as `data/train_batch`.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, List, Sequence

import torch

from cnnlab import atomic
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


def draw(pixels: torch.Tensor, labels: Sequence[str], total: int, augmented: bool = False):
    """A PIL image: a grid of the images (at most MAX_IMAGES) with their labels, under a title line."""
    from PIL import Image, ImageDraw

    pixels, labels = pixels[:MAX_IMAGES], list(labels)[:MAX_IMAGES]
    n, c, h, w = pixels.shape
    scale = max(1, round(TILE / max(h, w)))
    tile_h, tile_w = h * scale + LABEL + 4, max(w * scale, 48) + 4
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    title_h = 20
    # the tiles laid out in one array (one PIL image, not one per tile), then the labels drawn over it
    images = pixels.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    images = images.expand(n, 3, *images.shape[2:]) if c == 1 else images[:, :3]
    grid = torch.full((3, title_h + rows * tile_h, cols * tile_w), 255, dtype=torch.uint8)  # white
    left = (tile_w - 4 - w * scale) // 2
    for k in range(n):
        r, col = divmod(k, cols)
        y0, x0 = title_h + r * tile_h + LABEL, col * tile_w + 2 + left
        grid[:, y0:y0 + h * scale, x0:x0 + w * scale] = images[k]
    canvas = Image.fromarray(grid.permute(1, 2, 0).contiguous().numpy(), "RGB")
    pen = ImageDraw.Draw(canvas)
    font = _font(10)
    how = "augmented, de-normalized" if augmented else "de-normalized; no augmentation"
    pen.text((4, 4), f"first training batch as the model sees it: {n} of {total} images ({how})", fill="black",
             font=font)
    for k in range(n):
        r, col = divmod(k, cols)
        pen.text((col * tile_w + 2, title_h + r * tile_h + 1), _fit(pen, str(labels[k]), font, tile_w - 4),
                 fill="black", font=font)
    return canvas


def train_batch_task(loader: DeviceLoader, classes: Sequence[str], mean: Sequence[float],
                     std: Sequence[float], run_dir: Path) -> Callable[[object], Path]:
    """Takes the first batch now (it touches the loader's generator, so before training) and returns
    the drawing, which needs only the writer: the run does it on TensorBoard's thread
    (cnnlab/train/writer_thread.py) while the first epoch trains."""
    x, y = first_batch(loader)
    names = [classes[int(k)] for k in y.cpu()]
    augmented = bool(loader.crop or loader.flip)
    return lambda writer: _save_picture(x, names, mean, std, augmented, Path(run_dir), writer)


def _save_picture(x: torch.Tensor, names: List[str], mean: Sequence[float], std: Sequence[float],
                  augmented: bool, run_dir: Path, writer) -> Path:
    picture = draw(to_pixels(x, mean, std), names, len(x), augmented=augmented)
    path = run_dir / FILE
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # fast: a larger file costs nothing
    try:
        atomic.write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise TrainingError(f"could not write {path}: {write_failure(exc)}. Free space or choose another "
                            "hydra.run.dir.") from None
    _add_png(writer, "data/train_batch", buffer.getvalue(), picture.width, picture.height)
    return path


def _add_png(writer, tag: str, png: bytes, width: int, height: int) -> None:
    """A TensorBoard image from PNG bytes already encoded (add_image would encode them a second time)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), 0)


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
