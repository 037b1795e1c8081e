"""Model families behind one factory: `build_model(cfg.model, (C, H, W), num_classes)`.

Each family is a module of its own; the presets in conf/model/ pick a family and its settings.
Every model maps [B, C, H, W] floats to logits and names its classifier in `head_prefixes` (the part
replaced when fine-tuning on other classes).
"""
from __future__ import annotations

import importlib

import torch.nn as nn

from cnnlab.config import ModelConfig
from cnnlab.errors import ConfigError
from cnnlab.models.init import apply_init

# family -> (module, factory); imported on use so a small run never loads the big families
FAMILIES = {
    "mlp": ("cnnlab.models.mlp", "build_mlp"),
    "cnn": ("cnnlab.models.cnn", "build_cnn"),
    "vgg": ("cnnlab.models.vgg", "build_vgg"),
    "alexnet": ("cnnlab.models.alexnet", "build_alexnet"),
    "inception": ("cnnlab.models.inception", "build_googlenet"),
    "resnet": ("cnnlab.models.resnet", "build_resnet"),
}


def build_model(cfg: ModelConfig, shape: tuple, num_classes: int) -> nn.Module:
    """The model for images of `shape` (C, H, W): logits [B, num_classes], or [B, 1] with binary_head.

    With inception's aux_heads, training-mode forward returns (logits, [aux logits, ...]).
    """
    if cfg.family not in FAMILIES:
        raise ConfigError(f"model.family={cfg.family!r} is not one of {', '.join(FAMILIES)}.")
    if cfg.binary_head and num_classes != 2:
        raise ConfigError(f"model.binary_head=true needs a two-class dataset, but this one has {num_classes} "
                          "classes. Set model.binary_head=false.")
    if cfg.aux_heads and cfg.family != "inception":
        raise ConfigError(f"model.aux_heads=true is for the inception family (GoogLeNet), not {cfg.family}.")
    module_name, factory = FAMILIES[cfg.family]
    model = getattr(importlib.import_module(module_name), factory)(cfg, tuple(shape), num_classes)
    apply_init(model, cfg.init, cfg.init_std)
    return model
