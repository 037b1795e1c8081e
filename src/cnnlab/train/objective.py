"""The loss a model is trained on: cross-entropy (or BCE for a one-logit head) plus L1/L2 penalties."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.config import LossConfig


class Objective:
    def __init__(self, cfg: LossConfig, model: torch.nn.Module):
        self.cfg = cfg
        # Penalties act on weights (conv kernels, dense matrices), not on biases or BN scales,
        # as in the seeds' NumPy MultiLayerNet.
        self.penalized = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]

    def data_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] == 1:  # binary head: one logit for class 1
            return F.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)

    def penalty(self) -> torch.Tensor | float:
        total = 0.0
        if self.cfg.l1 > 0:
            total = total + self.cfg.l1 * sum(p.abs().sum() for p in self.penalized)
        if self.cfg.l2 > 0:
            total = total + 0.5 * self.cfg.l2 * sum(p.pow(2).sum() for p in self.penalized)
        return total

    def __call__(self, output, y: torch.Tensor) -> torch.Tensor:
        """Training loss; `output` is logits, or (logits, [aux logits]) from Inception's aux heads."""
        if isinstance(output, tuple):
            logits, aux = output
            loss = self.data_loss(logits, y) + 0.3 * sum(self.data_loss(a, y) for a in aux)
        else:
            loss = self.data_loss(output, y)
        if self.cfg.l1 > 0 or self.cfg.l2 > 0:
            loss = loss + self.penalty()
        return loss


def main_logits(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def predictions(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)
