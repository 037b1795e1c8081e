"""Loss and accuracy of a model over a loader, in eval mode and without gradients."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.data.loader import DeviceLoader
from cnnlab.diagnostics import class_probabilities
from cnnlab.train.metrics import Tally
from cnnlab.train.objective import Objective, main_logits
from cnnlab.train.runtime import autocast


def mirror_averaged(logits: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """Logits whose class probabilities are the mean of two predictions' (an image's and its mirror
    image's): log-probabilities for a softmax head, the log-odds for a one-logit (sigmoid) head. The
    loss, accuracy and predicted probabilities then all describe the averaged prediction."""
    if logits.shape[1] == 1:  # log p - log(1 - p), each side a log-mean-exp: exact where sigmoid saturates
        sig = F.logsigmoid
        return torch.logaddexp(sig(logits), sig(mirrored)) - torch.logaddexp(sig(-logits), sig(-mirrored))
    both = torch.stack([F.log_softmax(logits, dim=1), F.log_softmax(mirrored, dim=1)])
    return torch.logsumexp(both, dim=0) - math.log(2)


def eval_logits(model: torch.nn.Module, x: torch.Tensor, test_time_flip: bool = False) -> torch.Tensor:
    """The model's float logits for a batch; with `test_time_flip` (trainer.test_time_flip), those of
    each image averaged with its left-right mirror image (airbench's test-time augmentation)."""
    logits = main_logits(model(x)).float()
    if test_time_flip:
        logits = mirror_averaged(logits, main_logits(model(torch.flip(x, dims=[-1]))).float())
    return logits


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DeviceLoader, objective: Objective, device: torch.device,
             amp_dtype, top5: bool, predictions: bool = False, test_time_flip: bool = False) -> dict:
    """The metrics; with `predictions`, also each image's predicted class and its probability
    (`predicted`, `confidence`) from the same logits, so the test figures and the diagnostics
    (per-class accuracy, confusion matrix) come from one pass and always agree. `test_time_flip`:
    every figure is of each image averaged with its mirror image (eval_logits)."""
    was_training = model.training
    model.eval()
    tally = Tally(device, top5)
    predicted, confidence = [], []
    with autocast(device, amp_dtype):
        for x, y in loader:
            logits = eval_logits(model, x, test_time_flip)
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
