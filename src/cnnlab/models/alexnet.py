"""AlexNet (Krizhevsky et al.), with torchvision's layer layout and parameter names.

Small inputs get a 3x3 stride-1 first convolution and skip pools that would empty the map.
`width` scales every layer by width/64 (64 = torchvision's; 16 = a quarter of the channels).
"""
from __future__ import annotations

import torch.nn as nn

from cnnlab.models.layers import activation, conv_out, small_input
from cnnlab.models.schema import AlexNetConfig


class AlexNet(nn.Module):
    FEATURES_THEN_CLASSIFIER = True  # forward is classifier(avgpool(features(x)).flatten(1)): train/frozen_features.py

    def __init__(self, cfg: AlexNetConfig, shape: tuple, num_classes: int):
        super().__init__()
        small = small_input(shape, cfg.stem)
        size = min(shape[1], shape[2])
        act = lambda: activation(cfg.activation)  # noqa: E731
        c64, c192, c384, c256, c4096 = (max(1, c * cfg.width // 64) for c in (64, 192, 384, 256, 4096))

        def pool() -> nn.Module:
            nonlocal size
            if size >= 3:
                size = conv_out(size, 3, 2)
                return nn.MaxPool2d(3, 2)
            return nn.Identity()

        first = nn.Conv2d(shape[0], c64, 3, 1, 1) if small else nn.Conv2d(shape[0], c64, 11, 4, 2)
        size = conv_out(size, 3, 1, 1) if small else conv_out(size, 11, 4, 2)
        layers = [first, act(), pool(), nn.Conv2d(c64, c192, 5, padding=2), act(), pool(),
                  nn.Conv2d(c192, c384, 3, padding=1), act(), nn.Conv2d(c384, c256, 3, padding=1), act(),
                  nn.Conv2d(c256, c256, 3, padding=1), act(), pool()]
        self.features = nn.Sequential(*layers)
        pooled = 2 if small else 6
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(c256 * pooled * pooled, c4096), act(),
            nn.Dropout(cfg.dropout), nn.Linear(c4096, c4096), act(),
            nn.Linear(c4096, 1 if cfg.binary_head else num_classes))
        self.head_prefixes = ["classifier.6"]

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def build_alexnet(cfg: AlexNetConfig, shape: tuple, num_classes: int) -> nn.Module:
    return AlexNet(cfg, shape, num_classes)
