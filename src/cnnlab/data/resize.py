"""`dataset.image_size` for the in-memory datasets: every image resized once, on the training device.

uint8 in, uint8 out, so the loader keeps slicing one small tensor. Bilinear, antialiased when the
image shrinks (as PIL and torchvision's Resize do), so a 128x128 Fashion-MNIST image is the 28x28
one smoothly enlarged and a 32x32 CIFAR image shrunk to 16x16 does not alias. Folder datasets decode
straight to image_size from the files instead.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK = 512  # images interpolated at once: bounds the float32 copy (512 x 3 x 224 x 224 = 308 MB)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, C, size, size] on x's device; x itself when it already fits."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    shrink = size < h or size < w
    out = torch.empty((n, c, size, size), dtype=torch.uint8, device=x.device)
    for start in range(0, n, CHUNK):
        part = F.interpolate(x[start:start + CHUNK].float(), size=(size, size), mode="bilinear",
                             align_corners=False, antialias=shrink)
        out[start:start + CHUNK] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out
