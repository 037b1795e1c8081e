"""Model families behind one factory: `build_model(cfg.model, (C, H, W), num_classes)`.

Each family is a module of its own, registered with its typed config in cnnlab.models.schema; the
presets in conf/model/ pick a family and its settings. Every model maps [B, C, H, W] floats to logits
and names its classifier in `head_prefixes` (the part replaced when fine-tuning on other classes).
This package imports torch only when a model is built, so the command line can read the schemas.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    import torch.nn as nn

    from cnnlab.models.schema import ModelCommon


def build_model(cfg: "ModelCommon", shape: tuple, num_classes: int) -> "nn.Module":
    """The model for images of `shape` (C, H, W): logits [B, num_classes], or [B, 1] with binary_head.

    With inception's aux_heads, training-mode forward returns (logits, [aux logits, ...]).
    """
    from cnnlab import registry
    from cnnlab.models.init import apply_init

    entry = registry.get("model", cfg.family)
    if not isinstance(cfg, entry.config):  # e.g. the bare common keys: the family's defaults fill the rest
        from cnnlab.models.schema import model_config
        cfg = model_config(dataclasses.asdict(cfg))
    if cfg.binary_head and num_classes != 2:
        raise ConfigError(f"model.binary_head=true needs a two-class dataset, but this one has {num_classes} "
                          "classes. Set model.binary_head=false.")
    model = entry.load()(cfg, tuple(shape), num_classes)
    apply_init(model, cfg.init, cfg.init_std)
    return model
