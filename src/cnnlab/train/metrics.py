"""Running loss and accuracy kept on the device: adding a batch never waits for the GPU."""
from __future__ import annotations

import torch

from cnnlab.train.objective import predictions


class Tally:
    def __init__(self, device: torch.device, top5: bool):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.correct5 = torch.zeros((), dtype=torch.int64, device=device) if top5 else None
        self.count = 0  # known on the host without a sync

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        n = y.shape[0]
        self.count += n
        self.loss_sum += loss.detach().double() * n
        self.correct += (predictions(logits) == y).sum()
        if self.correct5 is not None:
            top5 = logits.topk(5, dim=1).indices
            self.correct5 += (top5 == y[:, None]).any(dim=1).sum()

    def read(self) -> dict:
        """Loss and accuracy as Python floats (one sync)."""
        if self.count == 0:
            return {"loss": float("nan"), "acc": float("nan")}
        values = {"loss": self.loss_sum.item() / self.count, "acc": self.correct.item() / self.count}
        if self.correct5 is not None:
            values["top5_acc"] = self.correct5.item() / self.count
        return values
