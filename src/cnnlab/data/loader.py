"""Batches from a uint8 tensor resident on the training device.

Each epoch draws one permutation; each batch is sliced, augmented, converted and normalized on the
device. Nothing here synchronises with the host, so a GPU never waits for Python.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

from cnnlab.data.augment import random_crop, random_flip


class DeviceLoader:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, mean: Sequence[float],
                 std: Sequence[float], *, shuffle: bool = False, crop: int = 0, flip: bool = False,
                 generator: torch.Generator | None = None, channels_last: bool = False,
                 drop_singleton: bool = True):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.crop, self.flip = shuffle, crop, flip
        self.generator = generator
        self.channels_last = channels_last
        c = x.shape[1]
        mean_t = torch.tensor(_per_channel(mean, c), dtype=torch.float32, device=x.device)
        std_t = torch.tensor(_per_channel(std, c), dtype=torch.float32, device=x.device)
        # x_norm = (x/255 - mean) / std = x * scale + shift, one fused multiply-add per pixel
        self.scale = (1.0 / (255.0 * std_t)).view(1, c, 1, 1)
        self.shift = (-mean_t / std_t).view(1, c, 1, 1)
        # A batch of one breaks batch norm in training; drop such a remainder rather than crash.
        self.drop_last = drop_singleton and shuffle and len(x) % batch_size == 1 and len(x) > 1

    def __len__(self) -> int:
        n = len(self.x) - (1 if self.drop_last else 0)
        return (n + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        return len(self.x) - (1 if self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_samples
        order = None
        if self.shuffle:
            order = torch.randperm(len(self.x), device=self.x.device, generator=self.generator)
        for start in range(0, n, self.batch_size):
            end = min(start + self.batch_size, n)
            if order is None:
                xb, yb = self.x[start:end], self.y[start:end]
            else:
                idx = order[start:end]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            yield self.transform(xb), yb

    def transform(self, xb: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> augmented, normalized float batch."""
        if self.crop:
            xb = random_crop(xb, self.crop, self.generator)
        if self.flip:
            xb = random_flip(xb, self.generator)
        out = torch.addcmul(self.shift, xb.to(torch.float32), self.scale)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def _per_channel(values: Sequence[float], channels: int) -> list[float]:
    values = list(values)
    return values * channels if len(values) == 1 else values
