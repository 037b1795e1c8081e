"""ResNet-18/34/50 (He et al.) and their plain twins (`residual: false`: the same layers, no skips).

Parameter names match torchvision's (conv1, bn1, layer1.0.conv1, downsample, fc) so ImageNet
weights load. Small inputs get the CIFAR stem (3x3 stride-1 conv, no max pool). `width` scales the
channels (64 = the paper's), to size depth experiments for a CPU. `batch_norm: false` takes every BN
layer out (the parameter names stay, each BN an Identity) and gives the convolutions biases instead,
to see what batch norm does for a deep network, with and without the skips.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from cnnlab.errors import ConfigError
from cnnlab.models.init import reference_init
from cnnlab.models.layers import StridedPointwiseConv, activation, small_input
from cnnlab.models.schema import ResNetConfig

LAYOUTS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3])}


def _conv(cin: int, cout: int, kernel: int, stride: int, bn: bool) -> nn.Conv2d:
    """A convolution followed by BN needs no bias (BN's shift replaces it); one without BN does."""
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=not bn)


def _norm(channels: int, bn: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if bn else nn.Identity()


class BasicBlock(nn.Module):
    expansion = 1
    summary_unit = True

    def __init__(self, inplanes: int, planes: int, stride: int, residual: bool, act: str, bn: bool = True):
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3, stride, bn)
        self.bn1 = _norm(planes, bn)
        self.relu = activation(act)
        self.conv2 = _conv(planes, planes, 3, 1, bn)
        self.bn2 = _norm(planes, bn)
        self.downsample = _projection(inplanes, planes, stride, bn) if residual else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4
    summary_unit = True

    def __init__(self, inplanes: int, planes: int, stride: int, residual: bool, act: str, bn: bool = True):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = _conv(inplanes, planes, 1, 1, bn)
        self.bn1 = _norm(planes, bn)
        self.conv2 = _conv(planes, planes, 3, stride, bn)
        self.bn2 = _norm(planes, bn)
        self.conv3 = _conv(planes, out, 1, 1, bn)
        self.bn3 = _norm(out, bn)
        self.relu = activation(act)
        self.downsample = _projection(inplanes, out, stride, bn) if residual else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out)


def _projection(inplanes: int, out: int, stride: int, bn: bool = True):
    """A 1x1 projection where the shortcut changes shape; None where identity fits."""
    if stride == 1 and inplanes == out:
        return None
    return nn.Sequential(StridedPointwiseConv(inplanes, out, stride, bias=not bn), _norm(out, bn))


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig, shape: tuple, num_classes: int):
        super().__init__()
        if cfg.depth not in LAYOUTS:
            raise ConfigError(f"model.depth={cfg.depth} is not a ResNet here: use 18, 34 or 50.")
        kind, counts = LAYOUTS[cfg.depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        width = cfg.width
        bn = cfg.batch_norm
        if small_input(shape, cfg.stem):
            self.conv1 = _conv(shape[0], width, 3, 1, bn)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = _conv(shape[0], width, 7, 2, bn)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = _norm(width, bn)
        self.relu = activation(cfg.activation)
        inplanes = width
        for index, count in enumerate(counts):
            planes = width * 2 ** index
            blocks = []
            for i in range(count):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(block(inplanes, planes, stride, cfg.residual, cfg.activation, bn))
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


def build_resnet(cfg: ResNetConfig, shape: tuple, num_classes: int) -> nn.Module:
    return ResNet(cfg, shape, num_classes)
