"""Never lose work: what the fit loop does at step boundaries.

The loop asks one cheap question per step (`state.step >= guard.next or guard.signum`); only when it
is due does the guard act, in this order:

1. NaN/Inf check of the losses since the last check. On CPU it is due every step (reading a CPU
   scalar costs nothing), so a blow-up stops within the step it happens. On CUDA it is due every
   `trainer.sync_every` steps and before every checkpoint, so no step waits for the GPU and no
   checkpoint is ever written from weights a NaN has reached.
2. A SIGINT/SIGTERM received since the last step: write `last.pt` (with the position inside the
   epoch) and stop with exit code 130 (SIGINT) or 143 (SIGTERM). A second signal stops at once;
   checkpoints are written atomically, so nothing is left half-written.
3. Every `trainer.checkpoint_every_steps` steps: write `last.pt` mid-epoch.

Under DDP the NaN and signal flags are reduced across ranks, so every rank stops at the same step.
`CNNLAB_TEST_SIGKILL=step:N` or `epoch:N` makes a run SIGKILL itself after global step N, or after
epoch N's checkpoint: the resume tests use it to crash at a known point.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, List, Optional

import torch

from cnnlab.errors import CnnlabError, TrainingError

log = logging.getLogger("cnnlab")

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's 128 + signal number


class Interrupted(CnnlabError):
    """SIGINT/SIGTERM: a checkpoint was saved and the run can be resumed."""

    status = "interrupted"

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def resume_command(run_dir: Path, overrides: List[str]) -> str:
    """The command that continues this run: its overrides, resume=true and its folder."""
    from cnnlab.rundir import resume_command as command

    return command(run_dir, overrides)


class Guard:
    def __init__(self, every: int = 1, checkpoint_every: int = 0,
                 reduce_flags: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self.every = max(1, every)  # steps between NaN checks
        self.checkpoint_every = checkpoint_every or 0
        self.reduce_flags = reduce_flags  # DDP: all-reduce (max) of [nan, signal] across ranks
        self.kill_step, self.kill_epoch = _test_kill()
        self.signum = 0  # the signal received, 0 for none
        self.next = math.inf  # the global step at which the guard acts next
        self.checked = 0  # batches of the current epoch already checked for NaN
        self.save_partial: Optional[Callable[[dict], None]] = None  # set by fit: writes last.pt
        self.resume_hint = ""  # the command that continues the run
        self._previous = {}

    # ------------------------------------------------------------ signals
    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread (e.g. a joblib worker thread)
        for signum in EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum, frame) -> None:
        if self.signum:  # the second one: stop now (an atomic write in progress leaves no debris)
            self.uninstall()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(EXIT_CODES[signum])
        self.signum = signum
        self.next = 0  # act at the next step boundary
        print(f"\ncnnlab: {signal.Signals(signum).name} received: saving a checkpoint after this step "
              "(send it again to stop at once).", file=sys.stderr, flush=True)

    # ------------------------------------------------------------ step boundaries
    def start_epoch(self, step: int, start_batch: int) -> None:
        self.checked = start_batch
        self._plan(step)

    def _plan(self, step: int) -> None:
        due = [step + self.every]
        if self.checkpoint_every:
            due.append(step - step % self.checkpoint_every + self.checkpoint_every)
        if self.kill_step is not None and self.kill_step > step:
            due.append(self.kill_step)
        self.next = 0 if self.signum else min(due)

    def boundary(self, epoch: int, batch: int, num_batches: int, step: int, step_losses: torch.Tensor,
                 progress: Callable[[], dict]) -> None:
        """Called after batch `batch` (0-based) of `epoch`, global step `step`, when due."""
        if self.reduce_flags is None:
            if self.checked == batch:  # one step (CPU): a Python float check, a few microseconds
                bad = not math.isfinite(step_losses[batch].item())
            else:
                bad = not bool(torch.isfinite(step_losses[self.checked:batch + 1]).all())
            signum = self.signum
        else:
            window = step_losses[self.checked:batch + 1]
            flags = torch.stack([(~torch.isfinite(window)).any().float(),
                                 torch.tensor(float(self.signum), device=window.device)])
            bad, signum = (int(v) for v in self.reduce_flags(flags).tolist())
        if bad:
            raise _nan_error(step_losses, self.checked, batch, epoch, num_batches, step)
        self.checked = batch + 1
        if signum:
            self.signum = self.signum or signum
            self._save(progress)
            position = (f"after epoch {epoch}" if batch + 1 == num_batches
                        else f"at epoch {epoch}, step {batch + 1} of {num_batches}")
            raise Interrupted(f"interrupted by {signal.Signals(signum).name} {position}; checkpoints/last.pt "
                              f"holds the run up to there. Continue it with: {self.resume_hint}",
                              EXIT_CODES.get(signal.Signals(signum), 128 + signum))
        # at an epoch's last step the epoch end writes this checkpoint (with the epoch's metrics)
        if self.checkpoint_every and step % self.checkpoint_every == 0 and batch + 1 < num_batches:
            self._save(progress)
        if self.kill_step == step:
            _sigkill(f"after step {step}")
        self._plan(step)

    def after_epoch_checkpoint(self, epoch: int) -> None:
        if self.kill_epoch == epoch:
            _sigkill(f"after epoch {epoch}")

    def _save(self, progress: Callable[[], dict]) -> None:
        if self.save_partial is not None:
            self.save_partial(progress())


def _nan_error(step_losses: torch.Tensor, first: int, last: int, epoch: int, num_batches: int,
               step: int) -> TrainingError:
    window = step_losses[first:last + 1]
    bad = (~torch.isfinite(window)).nonzero()
    if len(bad):
        k = first + int(bad[0])
        where = f"epoch {epoch}, step {k + 1} of {num_batches} (step {step - last + k} of the run)"
        value = f"{step_losses[k].item()}"
    else:  # another rank saw it
        where, value = f"epoch {epoch}, by step {last + 1} of {num_batches} (on another rank)", "nan or inf"
    return TrainingError(f"the training loss became {value} at {where}. The learning rate is the likely "
                         "cause: try a smaller optim.lr (or a warm-up schedule). checkpoints/last.pt and "
                         "best.pt, where written, hold the weights from before the blow-up.")


def _test_kill() -> tuple[Optional[int], Optional[int]]:
    spec = os.environ.get("CNNLAB_TEST_SIGKILL", "")
    kind, _, value = spec.partition(":")
    if not value.isdigit():
        return None, None
    return (int(value), None) if kind == "step" else (None, int(value))


def _sigkill(where: str) -> None:
    print(f"cnnlab: CNNLAB_TEST_SIGKILL: killing this process {where}.", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
