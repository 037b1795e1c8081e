"""Weight initialisation by name, as compared in seed 001 (std 0.01 vs Xavier vs He)."""
from __future__ import annotations

import math

import torch.nn as nn


def apply_init(model: nn.Module, kind: str, std: float = 0.01) -> None:
    """Re-initialise every conv and linear weight; biases start at zero. `default` keeps PyTorch's.

    xavier and he follow seed 001's definitions: std = sqrt(1/fan_in) and sqrt(2/fan_in).
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
