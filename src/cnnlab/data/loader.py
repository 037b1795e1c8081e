"""Batches from a uint8 tensor resident on the training device.

Each epoch draws one permutation; each batch is sliced, augmented, converted and normalized on the
device. Nothing here synchronises with the host, so a GPU never waits for Python.

The permutation of epoch e comes from its own generator seeded with (seed, e), as PyTorch's
DistributedSampler does, while augmentation draws from the run's data generator. So a run resumed
mid-epoch (`set_epoch(e, start_batch)`) sees exactly the batches it would have seen, and under DDP
every rank draws the same permutation and takes its slice of each global batch (`shard`).
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
        self.drop_singleton = drop_singleton
        self.order_seed = generator.initial_seed() if generator is not None else 0
        self.epoch, self.start_batch = 0, 0
        self.rank, self.world = 0, 1

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """The next pass uses epoch `epoch`'s permutation and starts at batch `start_batch`."""
        self.epoch, self.start_batch = epoch, start_batch

    def shard(self, rank: int, world: int) -> None:
        """Under DDP: yield only this rank's slice of every global batch of `batch_size` images."""
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return (self.num_samples + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        n = len(self.x)
        rest = n % self.batch_size
        # A batch of one (per rank) breaks batch norm in training; drop such a remainder rather than crash.
        if self.drop_singleton and self.shuffle and 0 < rest < 2 * self.world and n > rest:
            return n - rest
        return n

    def epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator(device=self.x.device).manual_seed(self.order_seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x), device=self.x.device, generator=g)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_samples
        order = self.epoch_order(self.epoch) if self.shuffle else None
        self.epoch += 1  # a caller that never calls set_epoch still gets a new order each pass
        first, self.start_batch = self.start_batch * self.batch_size, 0
        for start in range(first, n, self.batch_size):
            end = min(start + self.batch_size, n)
            if order is None:
                xb, yb = self.x[start:end], self.y[start:end]
            else:
                idx = order[start:end]
                if self.world > 1:
                    idx = idx.tensor_split(self.world)[self.rank]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            yield self.transform(xb), yb

    def normalize(self, xb: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float images as the network sees them, without augmentation."""
        return torch.addcmul(self.shift, xb.to(torch.float32), self.scale)

    def transform(self, xb: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> augmented, normalized float batch."""
        if self.crop:
            xb = random_crop(xb, self.crop, self.generator)
        if self.flip:
            xb = random_flip(xb, self.generator)
        out = self.normalize(xb)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def _per_channel(values: Sequence[float], channels: int) -> list[float]:
    values = list(values)
    return values * channels if len(values) == 1 else values
