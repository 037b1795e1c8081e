"""Weight initialisation: the `model.init` choices compared in seed 001, and the architectures' own.

`model.init` re-initialises every conv and linear weight after the model is built (biases start at
zero); `default` keeps what the constructor set: PyTorch's layer defaults, except for the deep
families, whose constructors call `reference_init` as torchvision does (a 16-layer VGG without batch
norm does not learn from PyTorch's default scale).
"""
from __future__ import annotations

import math

import torch.nn as nn


def apply_init(model: nn.Module, kind: str, std: float = 0.01) -> None:
    """Re-initialise conv and linear weights by name: normal (std), xavier or he.

    xavier and he follow seed 001's definitions: std = sqrt(1/fan_in) and sqrt(2/fan_in). (torch's
    xavier_normal_ uses sqrt(2/(fan_in+fan_out)) instead; the course's is the one compared here.)
    """
    if kind == "default":
        return
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            scale = {"normal": std, "xavier": math.sqrt(1.0 / fan_in), "he": math.sqrt(2.0 / fan_in)}[kind]
            nn.init.normal_(module.weight, 0.0, scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def reference_init(model: nn.Module, linear_std: float | None = None) -> None:
    """torchvision's init for VGG and ResNet: He (fan_out) convs, zero biases, BN at 1/0;
    linear layers N(0, linear_std) when given (VGG), else PyTorch's default (ResNet)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and linear_std is not None:
            nn.init.normal_(module.weight, 0.0, linear_std)
            nn.init.zeros_(module.bias)
