"""One image file to the pixels a model sees: decoded, converted and resized the same way for training
(the folder source) and for prediction (cnnlab-predict), so that both see the same array.

The shorter side is scaled to the target (bicubic) and the center cropped to it (aspect kept);
JPEGs are decoded at a reduced scale where that still covers the target, as PIL's draft mode allows.
Grayscale stays one channel unless three are asked for; everything else (RGBA, palette, CMYK, YCbCr)
becomes RGB, with alpha dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

GRAY_MODES = ("1", "L", "LA", "La", "I", "F")
Size = Union[int, Tuple[int, int]]  # a square side, or (height, width)


def decode_image(path: Path, size: Size, channels: Optional[int] = None) -> np.ndarray:
    """H x W (grayscale) or H x W x 3 (color) uint8; raises on files PIL cannot read.

    channels=None keeps grayscale images gray and makes the rest RGB (the folder source decides the
    dataset's channel count afterwards); channels=1 makes every image gray, as a 1-channel model needs."""
    from PIL import Image, ImageOps

    height, width = (size, size) if isinstance(size, int) else size
    with Image.open(path) as image:
        image.draft(None, (width, height))  # JPEG: decode at 1/2..1/8 scale when that still covers the size
        if image.mode.startswith("I;16"):  # 16-bit grayscale: keep the high byte (convert("L") would clip)
            image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
        if image.mode in GRAY_MODES or channels == 1:
            image = image.convert("L")
        else:  # RGB, RGBA, palette, CMYK, YCbCr, ...
            image = image.convert("RGB")
        return np.asarray(ImageOps.fit(image, (width, height), Image.Resampling.BICUBIC))


def to_channels_first(image: np.ndarray, channels: int) -> np.ndarray:
    """H x W or H x W x 3 -> channels x H x W; a gray image among color ones is repeated into RGB."""
    if image.ndim == 2:
        return np.repeat(image[None], channels, axis=0)
    if channels == 1:
        raise ValueError("a color image for a 1-channel input: decode it with channels=1")
    return image.transpose(2, 0, 1)
