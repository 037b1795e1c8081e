"""The seeds' plain CNNs as one family: blocks of convolutions, optional pooling, dense layers.

`blocks: [[32, 64]]` is conv 32 -> conv 64 -> pool (seed 002's lecture CNN); `pool` is one switch or
one per block (seed 003's no-pooling comparison). With batch norm each block follows seed 000's
order conv -> pool -> BN -> activation, and dense layers Dense -> BN -> activation. Dropout goes
before every dense layer after the flatten (seed 000: Flatten -> Dropout -> Dense -> Dropout -> Dense).

At the seeds' input sizes the layers and parameter counts are the seeds'. On smaller inputs a
'valid' conv that would not fit falls back to 'same' padding and a pool that would empty the map is
skipped, so every preset runs on every dataset from 8x8 up.
"""
from __future__ import annotations

import torch.nn as nn

from cnnlab.models.layers import Flatten, activation, conv_out
from cnnlab.models.schema import CNNConfig


def _pool_flags(cfg: CNNConfig) -> list[bool]:
    if isinstance(cfg.pool, bool):
        return [cfg.pool] * len(cfg.blocks)
    flags = list(cfg.pool)
    if len(flags) != len(cfg.blocks):
        from cnnlab.errors import ConfigError
        raise ConfigError(f"model.pool has {len(flags)} entries but the model has {len(cfg.blocks)} blocks: "
                          "give one true/false per block, or a single true/false.")
    return flags


def build_cnn(cfg: CNNConfig, shape: tuple, num_classes: int) -> nn.Module:
    channels, h, w = shape
    k = cfg.kernel_size
    features: list[nn.Module] = []
    for block, pool in zip(cfg.blocks, _pool_flags(cfg)):
        for i, out in enumerate(block):
            pad = k // 2 if cfg.padding == "same" or min(h, w) < k else 0
            features.append(nn.Conv2d(channels, out, k, padding=pad))
            h, w = conv_out(h, k, 1, pad), conv_out(w, k, 1, pad)
            channels = out
            last = i == len(block) - 1
            if last and pool and min(h, w) >= 2:
                features.append(nn.MaxPool2d(2, ceil_mode=cfg.pool_ceil))
                h, w = (-(-h // 2), -(-w // 2)) if cfg.pool_ceil else (h // 2, w // 2)
            if cfg.batch_norm:
                features.append(nn.BatchNorm2d(out))
            features.append(activation(cfg.activation))
    classifier: list[nn.Module] = [Flatten()]  # nn.Flatten's numbers, faster in channels_last
    width = channels * h * w
    for size in [*cfg.dense, None]:
        if cfg.dropout > 0:
            classifier.append(nn.Dropout(cfg.dropout))
        out = size if size is not None else (1 if cfg.binary_head else num_classes)
        classifier.append(nn.Linear(width, out))
        if size is not None:
            if cfg.batch_norm:
                classifier.append(nn.BatchNorm1d(size))
            classifier.append(activation(cfg.activation))
        width = out
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(*features))
    model.add_module("classifier", nn.Sequential(*classifier))
    model.head_prefixes = [f"classifier.{len(classifier) - 1}"]
    return model
