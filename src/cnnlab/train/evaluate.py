"""Loss and accuracy of a model over a loader, in eval mode and without gradients."""
from __future__ import annotations

import torch

from cnnlab.data.loader import DeviceLoader
from cnnlab.diagnostics import class_probabilities
from cnnlab.train.metrics import Tally
from cnnlab.train.objective import Objective, main_logits
from cnnlab.train.runtime import autocast


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DeviceLoader, objective: Objective, device: torch.device,
             amp_dtype, top5: bool, predictions: bool = False) -> dict:
    """The metrics; with `predictions`, also each image's predicted class and its probability
    (`predicted`, `confidence`) from the same logits, so the test figures and the diagnostics
    (per-class accuracy, confusion matrix) come from one pass and always agree."""
    was_training = model.training
    model.eval()
    tally = Tally(device, top5)
    predicted, confidence = [], []
    with autocast(device, amp_dtype):
        for x, y in loader:
            logits = main_logits(model(x)).float()
            tally.add(objective.data_loss(logits, y), logits, y)
            if predictions:
                best = class_probabilities(logits).max(dim=1)
                predicted.append(best.indices)
                confidence.append(best.values)
    model.train(was_training)
    metrics = tally.read()
    if predictions:
        empty = torch.zeros(0, device=device)
        metrics["predicted"] = torch.cat(predicted) if predicted else empty.long()
        metrics["confidence"] = torch.cat(confidence) if confidence else empty
    return metrics
