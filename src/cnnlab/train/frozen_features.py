"""Fine-tuning with a frozen conv base: its outputs computed once, not every epoch.

When the first layers of a network train nothing (`finetune.freeze`, no parameter of theirs
requires a gradient, no dropout among them, frozen batch norm kept in eval mode by finetune.py) and
the training images are not augmented, those layers give the same output for an image at every
epoch. Keras's transfer-learning tutorial runs the conv base over the data once for this reason
("fast feature extraction"). Here the loop trains and validates the rest of the network on the
stored outputs of that prefix: seed 000's VGG16 at 128x128 on one CPU thread evaluates 9.8 images/s
through the whole conv base, so 10 epochs of 110 training and 500 validation images cost ~10 min
per job; with block5 (10% of VGG16's convolutions) trained on blocks 1-4's stored outputs they cost
about 2. The test set still runs through the whole network, and checkpoints hold the whole model,
so cnnlab-predict and the diagnostics are unchanged. The numbers equal the uncached run's up to
float rounding (the prefix sees other batch sizes); `trainer.cache_frozen=false` turns it off.

Applies to the families whose forward is `classifier(avgpool(features(x)).flatten(1))` (VGG,
AlexNet: `FEATURES_THEN_CLASSIFIER`), without DDP, histograms or train-time augmentation.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Optional

import torch
import torch.nn as nn

from cnnlab.data import DataBundle
from cnnlab.data.loader import DeviceLoader
from cnnlab.train.runtime import autocast

log = logging.getLogger("cnnlab")

MAX_CACHE_BYTES = 4 << 30  # beyond this the stored outputs are not worth the memory: train as usual


def frozen_prefix_length(model: nn.Module) -> int:
    """How many leading modules of `model.features` train nothing and act the same in train mode."""
    if not getattr(model, "FEATURES_THEN_CLASSIFIER", False):
        return 0
    count = 0
    for module in model.features:
        trains = any(p.requires_grad for p in module.parameters())
        random = any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules())
        if trains or random:
            break
        count += 1
    return count


class AfterPrefix(nn.Module):
    """The network from layer `start` of `features` on: what trains on the stored outputs."""

    def __init__(self, model: nn.Module, start: int):
        super().__init__()
        self.model, self.start = model, start
        self.rest = model.features[start:]

    def forward(self, x):
        m = self.model
        return m.classifier(m.avgpool(self.rest(x)).flatten(1))


class StoredLoader(DeviceLoader):
    """A loader over stored prefix outputs: the same batches, in the same order, as the image
    loader it replaces; nothing to convert or augment."""

    def __init__(self, outputs: torch.Tensor, images: DeviceLoader):
        super().__init__(outputs, images.y, images.batch_size, [0.0], [1.0], shuffle=images.shuffle,
                         generator=images.generator, drop_singleton=images.drop_singleton)
        self.order_seed = images.order_seed

    def transform(self, xb: torch.Tensor) -> torch.Tensor:
        return xb


def plan(model: nn.Module, cfg, distributed: bool) -> int:
    """The prefix length to store (0: train as usual)."""
    if not cfg.trainer.cache_frozen or distributed or cfg.trainer.histograms or cfg.trainer.test_time_flip:
        return 0
    if cfg.dataset.augment.crop or cfg.dataset.augment.flip:
        return 0  # augmented images differ every epoch, and so do the prefix's outputs
    return frozen_prefix_length(model)


@torch.no_grad()
def store(model: nn.Module, start: int, data: DataBundle, device: torch.device, amp_dtype,
          eval_batch: int) -> Optional[DataBundle]:
    """The bundle whose train and val loaders hold the prefix's outputs (test keeps the images)."""
    prefix = model.features[:start]
    was_training = model.training
    model.eval()
    probe = _run(prefix, data.train.x[:1], data.train, device, amp_dtype, eval_batch)
    size = probe[0].numel() * probe.element_size() * (len(data.train.x) + len(data.val.x))
    if size > MAX_CACHE_BYTES:
        model.train(was_training)
        log.info(f"Not storing the frozen layers' outputs ({size / 2**30:.1f} GB): training through them.")
        return None
    train = _run(prefix, data.train.x, data.train, device, amp_dtype, eval_batch)
    val = train if data.val.x is data.train.x else _run(prefix, data.val.x, data.val, device, amp_dtype, eval_batch)
    model.train(was_training)
    log.info(f"The frozen layers features.0-{start - 1} train nothing and see unaugmented images: their "
             f"outputs for the {len(train):,} training and {len(val):,} validation images are computed "
             f"once ({size / 2**20:.0f} MB) and the rest of the network trains on them "
             "(trainer.cache_frozen=false trains through them every epoch).")
    return dataclasses.replace(data, train=StoredLoader(train, data.train), val=StoredLoader(val, data.val))


def _run(prefix: nn.Module, images: torch.Tensor, loader: DeviceLoader, device: torch.device, amp_dtype,
         batch: int) -> torch.Tensor:
    outputs = []
    with autocast(device, amp_dtype):
        for start in range(0, len(images), batch):
            outputs.append(prefix(loader.transform(images[start:start + batch])).float())
    return torch.cat(outputs)
