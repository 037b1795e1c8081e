"""The fit loop: epochs of device-resident batches, evaluation, early stopping and checkpoints.

Per step the loop does forward, backward and optimizer step and nothing that waits for the device:
losses and accuracies accumulate in device tensors and are read once per epoch (and every
`trainer.sync_every` steps for the progress bar).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import torch

import cnnlab
from cnnlab.config import RootConfig
from cnnlab.data import DataBundle
from cnnlab.errors import TrainingError
from cnnlab.optim import Schedule, current_lr
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.early_stopping import BestTracker
from cnnlab.train.epoch_checkpoints import EpochCheckpoints
from cnnlab.train.evaluate import evaluate
from cnnlab.train.faults import Guard
from cnnlab.train.histograms import Histograms
from cnnlab.train.metrics import Tally
from cnnlab.train.objective import Objective, main_logits
from cnnlab.train.runtime import autocast

log = logging.getLogger("cnnlab")


@dataclass
class FitState:
    """Everything the loop knows about the run so far; saved in checkpoints."""
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    history: List[dict] = field(default_factory=list)  # one dict of metrics per epoch
    train_seconds: float = 0.0
    train_images: int = 0
    stopped_early: bool = False
    startup_seconds: Optional[float] = None  # from importing cnnlab to the first training step
    progress: Optional[dict] = None  # in a mid-epoch checkpoint: the epoch's position and running sums
    threads: Optional[int] = None  # torch's CPU threads: trainer.num_threads=auto keeps them on resume


@dataclass
class FitContext:
    cfg: RootConfig
    model: torch.nn.Module  # what the loop calls (possibly compiled)
    raw_model: torch.nn.Module  # what gets saved
    data: DataBundle
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    objective: Objective
    device: torch.device
    amp_dtype: Optional[torch.dtype]
    scaler: Optional[torch.amp.GradScaler]
    writer: object  # TensorBoard SummaryWriter
    run_dir: Path
    make_checkpoint: Callable[[FitState, BestTracker], dict]
    guard: Optional[Guard] = None  # NaN checks, signals and mid-epoch checkpoints (train/faults.py)
    rank: int = 0  # under DDP only rank 0 writes checkpoints
    sync_metrics: Optional[Callable[[Tally, torch.Tensor], None]] = None  # DDP: sum the epoch's tallies
    save_checkpoints: bool = True  # false under trainer.fast_dev_run, which writes nothing


def fit(ctx: FitContext, state: FitState, tracker: BestTracker) -> FitState:
    cfg = ctx.cfg
    checkpoints = EpochCheckpoints(ctx.run_dir, cfg.trainer.checkpoint_every_s,
                                   writes=ctx.rank == 0 and ctx.save_checkpoints)
    if ctx.guard is not None:
        def save_partial(progress: dict) -> None:
            state.progress = progress
            try:
                checkpoints.mid_epoch(ctx.make_checkpoint(state, tracker))
            finally:
                state.progress = None
        ctx.guard.save_partial = save_partial
    try:
        best_weights = _epochs(ctx, state, tracker, checkpoints)
    except BaseException:
        checkpoints.flush()  # a failed run keeps the last epoch end before the failure, and its best
        raise
    if cfg.trainer.early_stopping.patience is not None:
        _restore_best(ctx, state, tracker, best_weights)
    return state


def _epochs(ctx: FitContext, state: FitState, tracker: BestTracker,
            checkpoints: EpochCheckpoints) -> Optional[dict]:
    """The epochs left; returns the best epoch's weights when early stopping keeps them in memory."""
    cfg, data = ctx.cfg, ctx.data
    top5 = data.num_classes > 5
    best_weights = None
    # trainer.histograms: per-layer activations and gradient norms once per epoch (train/histograms.py)
    histograms = Histograms(ctx, state.epoch) if cfg.trainer.histograms else None
    for epoch in range(state.epoch + 1, cfg.trainer.max_epochs + 1):
        started = time.perf_counter() - (state.progress or {}).get("seconds", 0.0)
        train_metrics = train_epoch(ctx, state, epoch)
        train_time = time.perf_counter() - started
        state.train_seconds += train_time
        state.train_images += data.train.num_samples

        val_metrics = evaluate(ctx.model, data.val, ctx.objective, ctx.device, ctx.amp_dtype, top5,
                               test_time_flip=cfg.trainer.test_time_flip)
        row = {"epoch": epoch, "train/loss": train_metrics["loss"], "train/acc": train_metrics["acc"],
               "val/loss": val_metrics["loss"], "val/acc": val_metrics["acc"],
               "lr": current_lr(ctx.optimizer), "seconds": round(time.perf_counter() - started, 3)}
        if top5:
            row["val/top5_acc"] = val_metrics["top5_acc"]
        state.history.append(row)
        state.epoch = epoch
        ctx.schedule.after_epoch(val_metrics["loss"])
        _log_epoch(ctx, row, train_time, data.train.num_samples)
        if histograms is not None:
            histograms(epoch)

        improved = tracker.update(epoch, row)
        if improved and cfg.trainer.early_stopping.patience is not None:
            best_weights = copy.deepcopy(ctx.raw_model.state_dict())
        kill_here = ctx.guard is not None and ctx.guard.kill_epoch == epoch  # the resume tests' crash point
        last = tracker.should_stop or epoch == cfg.trainer.max_epochs
        every = cfg.trainer.checkpoint_every_steps  # a step checkpoint due at an epoch's last step is this one
        step_due = bool(every) and state.step % every == 0
        checkpoints.epoch_end(lambda: ctx.make_checkpoint(state, tracker), improved,
                              force=last or kill_here or step_due)
        if ctx.guard is not None:
            ctx.guard.after_epoch_checkpoint(epoch)
        if tracker.should_stop:
            state.stopped_early = True
            log.info(f"Early stopping: {tracker.monitor} has not improved for {tracker.bad_epochs} epochs; "
                     f"restoring the weights of epoch {tracker.best_epoch}.")
            break
    return best_weights


def _restore_best(ctx: FitContext, state: FitState, tracker: BestTracker, best_weights: Optional[dict]) -> None:
    """With early stopping on, the final model is the monitored best epoch's, also when max_epochs ends
    the run first: the test figures then come from the weights best.pt holds."""
    if not tracker.best_epoch or tracker.best_epoch == state.epoch:
        return
    if not state.stopped_early:
        log.info(f"Restoring the weights of epoch {tracker.best_epoch}, the best {tracker.monitor}.")
    if best_weights is None:  # the best epoch came before a resume: its weights are in best.pt
        best_weights = load_checkpoint(ctx.run_dir / "checkpoints" / "best.pt")["model"]
    ctx.raw_model.load_state_dict(best_weights)


def train_epoch(ctx: FitContext, state: FitState, epoch: int) -> dict:
    cfg, loader = ctx.cfg, ctx.data.train
    ctx.model.train()
    tally = Tally(ctx.device, top5=False)  # training top-5 is reported nowhere: no topk per step
    step_losses = torch.zeros(len(loader), device=ctx.device)
    start = _restore_progress(state, epoch, tally, step_losses)
    loader.set_epoch(epoch, start)
    guard = ctx.guard or _NO_GUARD
    guard.start_epoch(state.step, start)
    started = time.perf_counter()

    def progress() -> dict:  # what a mid-epoch checkpoint needs to continue this epoch exactly
        done = i + 1
        return {"epoch": epoch, "batch": done, "loss_sum": tally.loss_sum, "correct": tally.correct,
                "correct5": tally.correct5, "count": tally.count, "step_losses": step_losses[:done],
                "seconds": resumed_seconds + time.perf_counter() - started}

    resumed_seconds = (state.progress or {}).get("seconds", 0.0)
    state.progress = None
    bar = _progress_bar(cfg, len(loader), epoch)
    if bar is not None and start:
        bar.update(start)
    i = start - 1
    for i, (x, y) in enumerate(loader, start):
        if state.startup_seconds is None:
            state.startup_seconds = round(time.perf_counter() - cnnlab.STARTED, 3)
        with autocast(ctx.device, ctx.amp_dtype):
            output = ctx.model(x)
            loss = ctx.objective(output, y)
        ctx.optimizer.zero_grad(set_to_none=True)
        if ctx.scaler is not None:
            ctx.scaler.scale(loss).backward()
            ctx.scaler.step(ctx.optimizer)
            ctx.scaler.update()
        else:
            loss.backward()
            ctx.optimizer.step()
        ctx.schedule.after_batch()
        state.step += 1
        step_losses[i] = loss.detach()
        tally.add(loss, main_logits(output).float(), y)
        if state.step >= guard.next:
            guard.boundary(epoch, i, len(loader), state.step, step_losses, progress)
        if bar is not None:
            bar.update(1)
            if (i + 1) % cfg.trainer.sync_every == 0:
                bar.set_postfix(loss=f"{tally.loss_sum.item() / tally.count:.4f}", refresh=False)
    if bar is not None:
        bar.close()
    if ctx.sync_metrics is not None:
        ctx.sync_metrics(tally, step_losses)
    metrics = tally.read()
    losses = step_losses.tolist()
    _check_finite(losses, epoch)
    first_step = state.step - len(losses) + 1
    for k, value in enumerate(losses):
        ctx.writer.add_scalar("train/loss_step", value, first_step + k)
    return metrics


class _NeverDue:  # for callers that bring no guard (scripts/bench.py)
    next = math.inf

    def start_epoch(self, step: int, start_batch: int) -> None:
        pass


_NO_GUARD = _NeverDue()


def _restore_progress(state: FitState, epoch: int, tally: Tally, step_losses: torch.Tensor) -> int:
    """Continue an epoch a mid-epoch checkpoint stopped in: its running sums, and where to start."""
    saved = state.progress
    if not saved or saved["epoch"] != epoch:
        return 0
    tally.loss_sum.copy_(saved["loss_sum"])
    tally.correct.copy_(saved["correct"])
    if tally.correct5 is not None and saved["correct5"] is not None:
        tally.correct5.copy_(saved["correct5"])
    tally.count = saved["count"]
    step_losses[:saved["batch"]] = saved["step_losses"].to(step_losses.device)
    return saved["batch"]


def _check_finite(losses: list, epoch: int) -> None:
    for k, value in enumerate(losses, 1):
        if not math.isfinite(value):
            raise TrainingError(f"the training loss became {value} at epoch {epoch}, step {k}. The learning "
                                "rate is the likely cause: try a smaller optim.lr (or a warm-up schedule). "
                                "checkpoints/last.pt and best.pt hold the weights from before.")


def _progress_bar(cfg: RootConfig, total: int, epoch: int):
    if not cfg.trainer.progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=f"Epoch {epoch}/{cfg.trainer.max_epochs}", unit="batch", leave=False,
                dynamic_ncols=True, disable=None)


def _log_epoch(ctx: FitContext, row: dict, train_time: float, images: int) -> None:
    w = ctx.writer
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "lr", "val/top5_acc"):
        if key in row:
            w.add_scalar(key, row[key], row["epoch"])
    w.add_scalar("perf/images_per_s", images / max(train_time, 1e-9), row["epoch"])
    w.flush()
    log.info(f"Epoch {row['epoch']:>3}/{ctx.cfg.trainer.max_epochs}  "
             f"loss {row['train/loss']:.4f}  acc {row['train/acc']:.2%}  "
             f"val_loss {row['val/loss']:.4f}  val_acc {row['val/acc']:.2%}  "
             f"lr {row['lr']:.2e}  {row['seconds']:.1f}s ({images / max(train_time, 1e-9):,.0f} img/s)")
