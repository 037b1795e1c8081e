"""Multi-layer perceptrons: seed 002's 784-784-784-10 and seed 001's MultiLayerNet (5 x 100)."""
from __future__ import annotations

import math

import torch.nn as nn

from cnnlab.models.layers import activation
from cnnlab.models.schema import MLPConfig


def build_mlp(cfg: MLPConfig, shape: tuple, num_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(shape)
    for size in cfg.hidden:
        layers.append(nn.Linear(width, size))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(activation(cfg.activation))
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = size
    layers.append(nn.Linear(width, 1 if cfg.binary_head else num_classes))
    model = nn.Sequential(*layers)
    model.head_prefixes = [str(len(layers) - 1)]
    return model
