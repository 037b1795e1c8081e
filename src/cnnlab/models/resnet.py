"""ResNet-18/34/50 (He et al.) and their plain twins (`residual: false`: the same layers, no skips).

Parameter names match torchvision's (conv1, bn1, layer1.0.conv1, downsample, fc) so ImageNet
weights load. Small inputs get the CIFAR stem (3x3 stride-1 conv, no max pool). `width` scales the
channels (64 = the paper's), to size depth experiments for a CPU.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from cnnlab.config import ModelConfig
from cnnlab.errors import ConfigError
from cnnlab.models.init import reference_init
from cnnlab.models.layers import StridedPointwiseConv, activation, small_input

LAYOUTS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3])}


class BasicBlock(nn.Module):
    expansion = 1
    summary_unit = True

    def __init__(self, inplanes: int, planes: int, stride: int, residual: bool, act: str):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = activation(act)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _projection(inplanes, planes, stride) if residual else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4
    summary_unit = True

    def __init__(self, inplanes: int, planes: int, stride: int, residual: bool, act: str):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = activation(act)
        self.downsample = _projection(inplanes, out, stride) if residual else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out)


def _projection(inplanes: int, out: int, stride: int):
    """A 1x1 projection where the shortcut changes shape; None where identity fits."""
    if stride == 1 and inplanes == out:
        return None
    return nn.Sequential(StridedPointwiseConv(inplanes, out, stride), nn.BatchNorm2d(out))


class ResNet(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: tuple, num_classes: int):
        super().__init__()
        if cfg.depth not in LAYOUTS:
            raise ConfigError(f"model.depth={cfg.depth} is not a ResNet here: use 18, 34 or 50.")
        kind, counts = LAYOUTS[cfg.depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        width = cfg.width
        if small_input(shape, cfg.stem):
            self.conv1 = nn.Conv2d(shape[0], width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(shape[0], width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = activation(cfg.activation)
        inplanes = width
        for index, count in enumerate(counts):
            planes = width * 2 ** index
            blocks = []
            for i in range(count):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(block(inplanes, planes, stride, cfg.residual, cfg.activation))
                inplanes = planes * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.fc = nn.Linear(inplanes, 1 if cfg.binary_head else num_classes)
        self.head_prefixes = ["fc"]
        reference_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))


def build_resnet(cfg: ModelConfig, shape: tuple, num_classes: int) -> nn.Module:
    return ResNet(cfg, shape, num_classes)
