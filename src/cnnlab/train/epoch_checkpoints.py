"""When the fit loop writes best.pt and last.pt at the end of an epoch.

Writing both every epoch cost more than the epochs of the course's small models (a checkpoint is a
temp file, torch.save and an fsync: 5-30 ms, twice, after a 0.05 s epoch), so at an epoch's end they
are written when `trainer.checkpoint_every_s` seconds have passed since the last write, at the last
epoch (max_epochs or early stopping), and whenever the guard writes a mid-epoch last.pt (SIGINT,
SIGTERM, `trainer.checkpoint_every_steps`). 0 writes every epoch. An epoch end that is not due is
kept in memory (a CPU copy of its checkpoint; a few milliseconds for the models whose epochs are
this short) and written when the run fails or is interrupted, so a NaN still leaves last.pt and
best.pt from the epoch before it, as with a write every epoch. best.pt is always written before
last.pt, so it is never newer than the monitored best that last.pt's tracker records: a resume finds
the best.pt it expects. A run killed outright (SIGKILL, power loss) loses at most that many seconds
of training; resuming it is still bit-exact, from the older checkpoint.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from cnnlab.train.checkpoint import save_checkpoint


class EpochCheckpoints:
    def __init__(self, run_dir: Path, every_s: float, writes: bool):
        self.folder = Path(run_dir) / "checkpoints"
        self.every_s = every_s
        self.writes = writes  # rank 0 of a run that writes files (not under fast_dev_run)
        self.pending_best: Optional[dict] = None  # an improved epoch's checkpoint, not yet in best.pt
        self.pending_last: Optional[dict] = None  # the latest epoch end's, not yet in last.pt
        self.written_at = time.monotonic()

    def due(self, force: bool) -> bool:
        return force or self.every_s <= 0 or time.monotonic() - self.written_at >= self.every_s

    def epoch_end(self, make: Callable[[], dict], improved: bool, force: bool) -> None:
        if not self.writes:
            return
        if self.due(force):
            checkpoint = make()
            if improved:
                self.pending_best = checkpoint
            self.pending_last = checkpoint
            self.flush()
        else:
            kept = _detached_copy(make())  # the next epoch changes the model's tensors in place
            self.pending_last = kept
            if improved:
                self.pending_best = kept

    def flush(self) -> None:
        """Write what is kept, best.pt first: at a due epoch end, and when the run fails or is interrupted."""
        if not self.writes:
            return
        if self.pending_best is not None:
            save_checkpoint(self.pending_best, self.folder / "best.pt")
            self.pending_best = None
        if self.pending_last is not None:
            save_checkpoint(self.pending_last, self.folder / "last.pt")
            self.pending_last = None
            self.written_at = time.monotonic()

    def mid_epoch(self, checkpoint: dict) -> None:
        """The guard's mid-epoch last.pt (a signal, trainer.checkpoint_every_steps): it supersedes a
        kept epoch end; a kept best.pt is written first."""
        self.pending_last = checkpoint
        self.flush()


def _detached_copy(value: Any) -> Any:
    """A checkpoint's tensors copied to the CPU (training goes on changing the originals in place)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _detached_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detached_copy(v) for v in value)
    return value
