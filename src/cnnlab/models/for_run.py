"""The model a command trains, prepared one way for every command that trains (cnnlab, cnnlab-lrfind).

Two copies of these steps had drifted before (cnnlab-lrfind lacked a step a run had), so they live here.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from cnnlab.finetune import apply_finetune
from cnnlab.models import build_model
from cnnlab.models.whiten import apply_whiten


def build_run_model(cfg, data, device: torch.device, channels_last: bool) -> nn.Module:
    """build_model, then what needs the data or a checkpoint: model.whiten (from the training split
    only), model.pretrained and finetune.*; moved to `device`, in channels_last where asked."""
    model = build_model(cfg.model, data.shape, data.num_classes)
    apply_whiten(model, cfg.model, data.train)
    apply_finetune(model, cfg.model, cfg.finetune, data.shape, data.classes)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model
