"""Loss and accuracy of a model over a loader, in eval mode and without gradients."""
from __future__ import annotations

import torch

from cnnlab.data.loader import DeviceLoader
from cnnlab.train.metrics import Tally
from cnnlab.train.objective import Objective
from cnnlab.train.runtime import autocast


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DeviceLoader, objective: Objective, device: torch.device,
             amp_dtype, top5: bool) -> dict:
    was_training = model.training
    model.eval()
    tally = Tally(device, top5)
    with autocast(device, amp_dtype):
        for x, y in loader:
            logits = model(x)
            tally.add(objective.data_loss(logits.float(), y), logits.float(), y)
    model.train(was_training)
    return tally.read()
