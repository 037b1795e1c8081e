"""VGG (Simonyan & Zisserman): configs A/B/D/E for depths 11/13/16/19, batch norm optional.

Parameter names match torchvision's (`features.N`, `classifier.N`) so ImageNet weights load. Small
inputs skip the max pools that would empty the map and use a 512-wide classifier on a 1x1 map (the
usual CIFAR variant) instead of 4096-wide layers on a 7x7 map; `width` scales both. `head: linear`
is seed 000's fine-tuning head instead: the conv base's map flattened -> Dropout -> Dense (on
128x128 inputs 4x4x512 = 8,192 -> 2 classes, 16,386 params).
"""
from __future__ import annotations

import torch.nn as nn

from cnnlab.errors import ConfigError
from cnnlab.models.init import apply_init, reference_init
from cnnlab.models.layers import activation, small_input
from cnnlab.models.schema import VGGConfig

CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    FEATURES_THEN_CLASSIFIER = True  # forward is classifier(avgpool(features(x)).flatten(1)): train/frozen_features.py

    def __init__(self, cfg: VGGConfig, shape: tuple, num_classes: int):
        super().__init__()
        if cfg.depth not in CONFIGS:
            raise ConfigError(f"model.depth={cfg.depth} is not a VGG: use one of 11, 13, 16, 19.")
        scale = cfg.width / 64
        layers: list[nn.Module] = []
        channels, h, w = shape
        for item in CONFIGS[cfg.depth]:
            if item == "M":
                # an identity stands in for a pool that would shrink the map below 1x1, keeping the
                # index layout torchvision's weights expect
                fits = min(h, w) >= 2
                layers.append(nn.MaxPool2d(2) if fits else nn.Identity())
                h, w = (h // 2, w // 2) if fits else (h, w)
                continue
            out = max(1, int(item * scale))
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(activation(cfg.activation))
            channels = out
        self.features = nn.Sequential(*layers)
        outputs = 1 if cfg.binary_head else num_classes
        if cfg.head == "linear":
            self.avgpool = nn.Identity()
            self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(channels * h * w, outputs))
            self.head_prefixes = ["classifier.1"]
        else:
            pooled, hidden = (1, 512) if small_input(shape, cfg.stem) else (7, 4096)
            hidden = max(1, int(hidden * scale))
            self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
            self.classifier = nn.Sequential(
                nn.Linear(channels * pooled * pooled, hidden), activation(cfg.activation), nn.Dropout(cfg.dropout),
                nn.Linear(hidden, hidden), activation(cfg.activation), nn.Dropout(cfg.dropout),
                nn.Linear(hidden, outputs))
            self.head_prefixes = ["classifier.6"]
        # torchvision's N(0, 0.01) is made for 4096-wide layers (0.01 * sqrt(4096) = 0.64 per layer). On a
        # narrow head (width < 64, or the 512-wide CIFAR one) it shrinks the signal ~10x per layer: VGG-11
        # at width 16 stalled at 46% on digits after 20 epochs. There the linear layers get He's
        # N(0, 2/fan_in): 69% on one seed (model.batch_norm=true, i.e. vgg11_bn: 96%).
        wide = cfg.head == "linear" or self.classifier[0].out_features >= 4096
        reference_init(self, linear_std=0.01 if wide else None)
        if not wide:
            apply_init(self.classifier, "he")

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def build_vgg(cfg: VGGConfig, shape: tuple, num_classes: int) -> nn.Module:
    return VGG(cfg, shape, num_classes)
