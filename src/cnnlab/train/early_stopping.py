"""Track the best epoch of a monitored validation metric and say when to stop."""
from __future__ import annotations

import math
from typing import Optional


class BestTracker:
    def __init__(self, monitor: str, patience: Optional[int], min_delta: float):
        self.monitor = monitor  # val/loss (lower is better) or val/acc (higher is better)
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf if monitor == "val/loss" else -math.inf
        self.best_epoch = 0
        self.bad_epochs = 0

    def update(self, epoch: int, metrics: dict) -> bool:
        """Record an epoch's metrics; True when this epoch is the best so far."""
        value = metrics[self.monitor]
        improved = (value < self.best - self.min_delta if self.monitor == "val/loss"
                    else value > self.best + self.min_delta)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
