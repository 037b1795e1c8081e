"""A dataset in memory: uint8 image tensors and int64 labels for train, validation and test."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional

import torch

from cnnlab.errors import DataError


@dataclass
class Splits:
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: List[str]
    val_x: Optional[torch.Tensor] = None  # None: carved out of train by `carve_validation`
    val_y: Optional[torch.Tensor] = None
    test_split: str = "test"  # the split test_x really is: "val" where a folder has val/ but no test/
    val_from_test: bool = False  # set by `carve_validation` when validation borrows the test split

    @property
    def shape(self) -> tuple:
        """(channels, height, width) of one image."""
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def check_splits(s: Splits, name: str) -> None:
    """Fail early, in the user's terms, on data a source could not have meant."""
    for part in ("train", "val", "test"):
        x, y = getattr(s, f"{part}_x"), getattr(s, f"{part}_y")
        if x is None:
            continue
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise DataError(f"dataset '{name}': {part} images must be uint8 [N, C, H, W], got {x.dtype} {tuple(x.shape)}.")
        if len(x) != len(y):
            raise DataError(f"dataset '{name}': {part} has {len(x)} images but {len(y)} labels.")
    if len(s.train_x) == 0:
        raise DataError(f"dataset '{name}' has no training images.")


def carve_validation(s: Splits, val_split: float, train_size: Optional[int], split_seed: int = 0,
                     val_from_test: bool = False, name: Optional[str] = None) -> Splits:
    """Hold out `val_split` of train when the set has no validation split, then keep `train_size`.

    Validating on the test split would make the test set choose best.pt and the early-stopping epoch,
    so val_split=0 without a validation split is refused unless `val_from_test` says it is meant.

    The hold-out uses a fixed generator so every seed of a sweep sees the same validation images;
    `train_size` keeps the first N of what remains (the seeds' overfitting runs use ~110).
    """
    train_x, train_y, val_x, val_y = s.train_x, s.train_y, s.val_x, s.val_y
    if val_x is None and val_split > 0:
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(split_seed))
        n_val = max(1, int(round(len(train_x) * val_split)))
        if n_val >= len(train_x):
            raise DataError(f"dataset.val_split={val_split} leaves no training images out of {len(train_x)}.")
        val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
        val_x, val_y = train_x[val_idx], train_y[val_idx]
        train_x, train_y = train_x[train_idx], train_y[train_idx]
    if train_size is not None:
        train_x, train_y = train_x[:train_size], train_y[:train_size]
    borrowed = val_x is None  # val_split=0 and no validation split of its own
    if borrowed and not val_from_test:
        dataset = f"dataset '{name}'" if name else "this dataset"
        raise DataError(f"{dataset} has no validation split and dataset.val_split=0, so validation would use the "
                        "test images: best.pt, the best epoch, early stopping and a sweep's objective would all be "
                        "chosen on the test set. Hold out part of train with dataset.val_split=0.1 (or any fraction "
                        "in (0, 1)), or add dataset.val_from_test=true to validate on test knowingly; every output "
                        "then says so.")
    if borrowed:
        val_x, val_y = s.test_x, s.test_y
    return replace(s, train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, val_from_test=borrowed)


def channel_stats(x: torch.Tensor, max_images: int = 10000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std on the 0..1 scale, from (at most `max_images` of) the train split."""
    sample = x[:max_images].float().div_(255)
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.tolist(), std.tolist()


def select_classes(s: Splits, classes: List[int]) -> Splits:
    """Keep the images of `classes` (indices into s.classes), relabelled 0..k-1 in the order given.

    `dataset.classes=[5,6,7,8,9]` makes a five-class task of Fashion-MNIST's second half: pretrain on
    one part of a dataset, fine-tune on the other (experiment=finetune).
    """
    bad = [c for c in classes if not 0 <= c < s.num_classes]
    if not classes or bad or len(set(classes)) != len(classes):
        raise DataError(f"dataset.classes={classes} must be distinct class indices from 0 to {s.num_classes - 1} "
                        f"({', '.join(s.classes)}).")
    lookup = torch.full((s.num_classes,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))

    def pick(x, y):
        if x is None:
            return None, None
        keep = lookup[y] >= 0
        return x[keep], lookup[y[keep]]

    train_x, train_y = pick(s.train_x, s.train_y)
    test_x, test_y = pick(s.test_x, s.test_y)
    val_x, val_y = pick(s.val_x, s.val_y)
    return replace(s, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, val_x=val_x, val_y=val_y,
                   classes=[s.classes[c] for c in classes])
