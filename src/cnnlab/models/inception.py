"""GoogLeNet (Szegedy et al.) with naive or reduced Inception modules and optional auxiliary heads.

reduced: the paper's module, 1x1 convolutions cut the channels before the 3x3 and 5x5 ones.
naive:   the same branches without those 1x1 reductions (seed 004's "naive" module). The pool
         branch keeps its 1x1 projection, so both kinds have the same output widths and the
         comparison isolates what the reductions save; without it the channels would grow to
         ~5,000 by the last module.
Aux heads (after 4a and 4d) add 0.3x their loss in training, as in the paper; eval uses the main head.
`batch_norm: true` puts BN after every convolution (torchvision's GoogLeNet, BN-Inception); false is
the 2014 paper's network. Names follow torchvision's (conv1.conv, inception3a.branch2.0.conv, aux1.fc2,
fc), but the 5x5 branch is the paper's 5x5, so torchvision's weights (3x3 there) do not load.
`model.width` scales every channel count by width/64 (64 = the paper's network; 16 = a quarter of the
channels, about 1/16 of the compute) so that GoogLeNet fits a CPU beside the other families.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from cnnlab.models.init import reference_init
from cnnlab.models.layers import activation, small_input
from cnnlab.models.schema import InceptionConfig

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), from the paper's Table 1; a module's input
# width is the previous one's output (the sum of 1x1, 3x3, 5x5 and pool proj)
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
PAPER_WIDTH = 64  # conv1's channels in the paper; model.width / PAPER_WIDTH scales every layer


class BasicConv2d(nn.Module):
    """Conv -> (BN) -> activation; 'same' padding, so only the strides shrink the map."""

    def __init__(self, cin: int, cout: int, kernel: int, act: str, bn: bool, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout, eps=0.001) if bn else nn.Identity()
        self.act = activation(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Inception(nn.Module):
    summary_unit = True

    def __init__(self, cin: int, spec: tuple, naive: bool, act: str, bn: bool):
        super().__init__()
        c1, r3, c3, r5, c5, proj = spec
        self.out_channels = c1 + c3 + c5 + proj
        self.branch1 = BasicConv2d(cin, c1, 1, act, bn)
        if naive:
            self.branch2 = BasicConv2d(cin, c3, 3, act, bn)
            self.branch3 = BasicConv2d(cin, c5, 5, act, bn)
        else:
            self.branch2 = nn.Sequential(BasicConv2d(cin, r3, 1, act, bn), BasicConv2d(r3, c3, 3, act, bn))
            self.branch3 = nn.Sequential(BasicConv2d(cin, r5, 1, act, bn), BasicConv2d(r5, c5, 5, act, bn))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, proj, 1, act, bn))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    summary_unit = True

    def __init__(self, cin: int, num_classes: int, act: str, bn: bool, scale=lambda c: c):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))  # the paper's 5x5/3 average pool on its 14x14 map
        self.conv = BasicConv2d(cin, scale(128), 1, act, bn)
        self.fc1 = nn.Linear(scale(128) * 16, scale(1024))
        self.act = activation(act)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(scale(1024), num_classes)

    def forward(self, x):
        return self.fc2(self.dropout(self.act(self.fc1(self.conv(self.pool(x)).flatten(1)))))


class GoogLeNet(nn.Module):
    def __init__(self, cfg: InceptionConfig, shape: tuple, num_classes: int):
        super().__init__()
        act, naive, bn = cfg.activation, cfg.inception == "naive", cfg.batch_norm
        outputs = 1 if cfg.binary_head else num_classes
        size = min(shape[1], shape[2])

        def scale(channels: int) -> int:
            return max(1, channels * cfg.width // PAPER_WIDTH)

        def pool() -> nn.Module:
            nonlocal size
            if size < 2:
                return nn.Identity()
            size = (size - 1) // 2 + 1  # kernel 3, stride 2, padding 1
            return nn.MaxPool2d(3, 2, 1)

        # the CIFAR stem keeps full resolution up to the first Inception module; the ImageNet one
        # downsamples 8x (7x7/2 conv, two max pools)
        small = small_input(shape, cfg.stem)
        c64, c192 = scale(64), scale(192)
        if small:
            self.conv1 = BasicConv2d(shape[0], c64, 3, act, bn)
        else:
            self.conv1 = BasicConv2d(shape[0], c64, 7, act, bn, stride=2)
            size = (size - 1) // 2 + 1
        self.maxpool1 = nn.Identity() if small else pool()
        self.conv2 = BasicConv2d(c64, c64, 1, act, bn)
        self.conv3 = BasicConv2d(c64, c192, 3, act, bn)
        self.maxpool2 = nn.Identity() if small else pool()
        channels = c192
        for name in MODULES:
            module = Inception(channels, tuple(scale(c) for c in MODULES[name]), naive, act, bn)
            setattr(self, f"inception{name}", module)
            channels = module.out_channels
            if name == "3b":
                self.maxpool3 = pool()
            elif name == "4e":
                self.maxpool4 = pool()
        self.aux1 = InceptionAux(self.inception4a.out_channels, outputs, act, bn, scale) if cfg.aux_heads else None
        self.aux2 = InceptionAux(self.inception4d.out_channels, outputs, act, bn, scale) if cfg.aux_heads else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(channels, outputs)
        self.head_prefixes = ["fc", "aux1.fc2", "aux2.fc2"] if cfg.aux_heads else ["fc"]
        reference_init(self)  # He convs keep the signal alive through 22 layers when BN is off

    def forward(self, x):
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if aux1 is not None:
            return logits, [aux1, aux2]
        return logits


def build_googlenet(cfg: InceptionConfig, shape: tuple, num_classes: int) -> nn.Module:
    return GoogLeNet(cfg, shape, num_classes)
