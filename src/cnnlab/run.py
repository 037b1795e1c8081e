"""One training job: from a validated config to a trained model, TensorBoard curves and results.json."""
from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import List

import torch

import cnnlab
from cnnlab.config import RootConfig, default_data_dir
from cnnlab.data import DataBundle, build_data
from cnnlab.data.preview import train_batch_task
from cnnlab.diagnostics import diagnosis_of, save_diagnostics
from cnnlab.errors import ConfigError
from cnnlab.models.for_run import build_run_model
from cnnlab.models.summary import count_params, summarize
from cnnlab.optim import build_optimizer, build_schedule, resize_schedule
from cnnlab.results import best_summary, write_results
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.early_stopping import BestTracker
from cnnlab.train.evaluate import evaluate
from cnnlab.train import distributed, frozen_features, resume_settings, sanity
from cnnlab.train.faults import Guard, resume_command
from cnnlab.train.loop import FitContext, FitState, fit
from cnnlab.train.objective import Objective
from cnnlab.train.memory import keep_freed_memory
from cnnlab.train.threads import apply_threads, start_job
from cnnlab.train.writer_thread import WriterThread
from cnnlab.train.runtime import (autocast_dtype, pick_device, seed_everything, set_determinism,
                                  use_channels_last)
from cnnlab.train.runtime import set_tf32, use_tf32

log = logging.getLogger("cnnlab")


def run_job(cfg: RootConfig, run_dir: Path, overrides: List[str]) -> dict:
    wall_start = time.perf_counter()
    cfg = sanity.configure(cfg)  # trainer.fast_dev_run: one epoch of one batch
    start_job(cfg.trainer.num_threads)  # auto is decided once the model is built
    keep_freed_memory(cfg.trainer.keep_freed_memory)
    device = pick_device(cfg.device)
    ddp = distributed.setup(device)  # under torchrun: this process's rank and device; else None
    device = ddp.device if ddp is not None else device
    lead = ddp is None or ddp.rank == 0  # the process that writes
    seed_everything(cfg.seed)
    set_determinism(cfg.trainer.deterministic, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        set_tf32(use_tf32(cfg.trainer.tf32, cfg.trainer.precision))

    channels_last = use_channels_last(cfg.trainer.channels_last, cfg.model.family)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    data_dir = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
    data = build_data(cfg.dataset, data_dir, device, generator, channels_last)
    data = sanity.limit(data, cfg)  # trainer.fast_dev_run / trainer.overfit_batches

    model = build_run_model(cfg, data, device, channels_last)  # model.whiten, model.pretrained, finetune.*
    total_params, trainable_params = count_params(model)
    threads = apply_threads(cfg.trainer.num_threads, model, data.shape, cfg.dataset.batch_size, device)
    log.info(f"cnnlab: {cfg.model.name} on {cfg.dataset.name} ({len(data.train.x):,} train / "
             f"{len(data.val.x):,} val / {len(data.test.x):,} test images of "
             f"{'x'.join(map(str, data.shape))}, {data.num_classes} classes), {cfg.optim.name} "
             f"lr {cfg.optim.lr:g}, {device.type}, run folder {run_dir}")
    for caveat in data.caveats():  # validation or "test" figures that are not what their name says
        log.warning(caveat)
    mirror = cfg.dataset.mirror_caveat(cfg.trainer.test_time_flip)  # flips on digits
    if mirror:
        log.warning(mirror)
    if cfg.trainer.summary:
        log.info(summarize(model, data.shape, device, title=cfg.model.name))

    if ddp is not None:
        ddp.shard(data, cfg.dataset.batch_size, cfg.seed, generator)
    amp_dtype = autocast_dtype(cfg.trainer.precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    optimizer = build_optimizer(cfg.optim, model.parameters())
    schedule = build_schedule(cfg.sched, optimizer, cfg.trainer.max_epochs, len(data.train))
    objective = Objective(cfg.loss, model)
    tracker = BestTracker(cfg.trainer.monitor, cfg.trainer.early_stopping.patience,
                          cfg.trainer.early_stopping.min_delta)
    state = FitState(threads=threads)
    train_model = ddp.wrap(model) if ddp is not None else model
    train_model = torch.compile(train_model) if cfg.trainer.compile else train_model

    writer = distributed.NullWriter()  # until the run's own opens, just before training
    try:
        def make_checkpoint(fit_state: FitState, best: BestTracker) -> dict:
            return {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "fit": dataclasses.asdict(fit_state),
                "tracker": best.state_dict(), "rng": _rng_state(generator, device),
                "config": dataclasses.asdict(cfg), "classes": list(data.classes),
                "shape": list(data.shape), "mean": list(data.mean), "std": list(data.std),
                "scaler": scaler.state_dict() if scaler is not None else None,
            }

        if cfg.resume:
            _resume(cfg, run_dir, model, optimizer, schedule, scaler, state, tracker, generator, device,
                    len(data.train))

        # On CPU reading the loss costs nothing, so NaN is checked every step; on CUDA only where the
        # loop syncs anyway (trainer.sync_every), so no step waits for the GPU.
        guard = Guard(every=1 if device.type != "cuda" else cfg.trainer.sync_every,
                      checkpoint_every=cfg.trainer.checkpoint_every_steps,
                      reduce_flags=ddp.reduce_flags if ddp is not None else None)
        guard.resume_hint = resume_command(run_dir, overrides)
        fit_model, fit_data = _frozen_prefix_stored(cfg, model, data, device, amp_dtype, ddp, state) or (train_model, data)
        if lead and sanity.writes(cfg):  # TensorBoard and train_batch.png on a thread beside the first epoch
            preview = cfg.trainer.diagnostics and state.step == 0
            tasks = [train_batch_task(data.train, data.classes, data.mean, data.std, run_dir)] if preview else []
            writer = WriterThread(lambda: _open_writer(run_dir), tasks)
        ctx = FitContext(cfg=cfg, model=fit_model, raw_model=model, data=fit_data, optimizer=optimizer,
                         schedule=schedule, objective=objective, device=device, amp_dtype=amp_dtype,
                         scaler=scaler, writer=writer, run_dir=run_dir, make_checkpoint=make_checkpoint,
                         guard=guard, rank=ddp.rank if ddp is not None else 0, save_checkpoints=sanity.writes(cfg),
                         sync_metrics=ddp.sync_metrics if ddp is not None else None)
        guard.install()
        try:
            fit(ctx, state, tracker)
        finally:
            guard.uninstall()

        top5 = data.num_classes > 5
        test = evaluate(model, data.test, objective, device, amp_dtype, top5, predictions=True,
                        test_time_flip=cfg.trainer.test_time_flip)
        predicted, confidence = test.pop("predicted"), test.pop("confidence")
        results = _results(cfg, state, test, total_params, trainable_params, overrides, wall_start, tracker, data)
        if not lead or not sanity.writes(cfg):
            if lead:
                log.info(sanity.closing_line(_closing_line(results, run_dir), cfg, results))
            return results
        # the test pass's own predictions: per-class results and figures agree with test_acc exactly
        diagnosis = diagnosis_of(data.test, data.classes, predicted, confidence)
        results.update(diagnosis.summary())  # per_class_acc, most_confused
        write_results(run_dir, results)
        if cfg.trainer.diagnostics:  # after results.json, so a drawing problem cannot cost the results
            save_diagnostics(diagnosis, data.test, data.classes, run_dir, writer)
        from cnnlab.train.tensorboard import log_hparams
        log_hparams(writer, cfg, overrides, results)
        log.info(sanity.closing_line(_closing_line(results, run_dir), cfg, results))
        return results
    finally:
        writer.close()
        # the next job of a sweep (same process) measures its start-up from here, not from the import
        cnnlab.STARTED = time.perf_counter()


def _open_writer(run_dir: Path):
    from cnnlab.train.tensorboard import RunWriter  # on the writer's thread: ~0.1 s off the first step

    return RunWriter(run_dir)


def _frozen_prefix_stored(cfg: RootConfig, model, data, device, amp_dtype, ddp, state: FitState):
    """(the model after the frozen prefix, the loaders of its stored outputs), or None
    (train/frozen_features.py). Computing them counts as training time, not start-up."""
    start = frozen_features.plan(model, cfg, distributed=ddp is not None)
    if not start:
        return None
    began = time.perf_counter()
    stored = frozen_features.store(model, start, data, device, amp_dtype, data.val.batch_size)
    seconds = time.perf_counter() - began
    state.train_seconds += seconds
    cnnlab.STARTED += seconds  # startup_seconds (to the first step) leaves it out
    if stored is None:
        return None
    rest = frozen_features.AfterPrefix(model, start)
    return (torch.compile(rest) if cfg.trainer.compile else rest), stored


def _results(cfg: RootConfig, state: FitState, test: dict, total: int, trainable: int,
             overrides: List[str], wall_start: float, tracker: BestTracker, data: DataBundle) -> dict:
    history = state.history
    last = history[-1] if history else {}
    results = {
        "status": "completed",
        "test_acc": test["acc"], "test_loss": test["loss"],
        **best_summary(history, cfg.trainer.monitor, tracker.best_epoch),  # trainer.monitor's best epoch
        "test_split": data.test_split, "val_from_test": data.val_from_test,  # where test_*/val figures come from
        "epochs": state.epoch, "stopped_early": state.stopped_early,
        "final_train_acc": last.get("train/acc"), "final_train_loss": last.get("train/loss"),
        "final_val_acc": last.get("val/acc"), "final_val_loss": last.get("val/loss"),
        "params": total, "trainable_params": trainable,
        "num_threads": torch.get_num_threads(),
        "train_seconds": round(state.train_seconds, 3),
        "images_per_s": round(state.train_images / state.train_seconds, 1) if state.train_seconds else None,
        "wall_seconds": round(time.perf_counter() - wall_start, 3),
        "startup_seconds": state.startup_seconds,
        "model": cfg.model.name, "dataset": cfg.dataset.name, "optim": cfg.optim.name, "seed": cfg.seed,
        "overrides": list(overrides), "history": history,
        "overfit_batches": cfg.trainer.overfit_batches,
        "test_time_flip": cfg.trainer.test_time_flip,  # val_* and test_* of each image averaged with its mirror
    }
    if "top5_acc" in test:
        results["test_top5_acc"] = test["top5_acc"]
    return results


def _closing_line(results: dict, run_dir: Path) -> str:
    on_val = results.get("test_split", "test") != "test"
    line = f"{'Validation' if on_val else 'Test'} accuracy {results['test_acc']:.2%} (loss {results['test_loss']:.4f})"
    if "test_top5_acc" in results:
        line += f", top-5 {results['test_top5_acc']:.2%}"
    if on_val:
        line += " (no test split: results.json's test_* figures are these validation figures)"
    if results["best_epoch"] is not None:
        loss, acc = f"{results['best_val_loss']:.4f}", f"{results['best_val_acc']:.2%}"
        line += (f"; best val/loss {loss} at epoch {results['best_epoch']} (val_acc {acc})"
                 if results["monitor"] == "val/loss"
                 else f"; best val/acc {acc} at epoch {results['best_epoch']} (val_loss {loss})")
    if results.get("test_time_flip"):
        line += "; every val and test figure averages each image with its mirror image (trainer.test_time_flip)"
    if results.get("val_from_test"):
        line += "; validated on the test split (dataset.val_from_test=true): the best epoch was chosen on test images"
    return line + f"; {results['train_seconds']:.1f}s of training. Results in {run_dir / 'results.json'}"


def _rng_state(generator: torch.Generator, device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _keep_threads(setting, state: FitState, device: torch.device) -> None:
    """Under trainer.num_threads=auto a resumed run continues on the threads it started with: auto
    decides from the machine's load, and another count sums in another order, so a run resumed while
    the machine was busier would not be bit-exact with one never interrupted. A fixed count is
    the user's and is honoured."""
    saved = state.threads
    if setting == "auto" and device.type == "cpu" and saved and saved != torch.get_num_threads():
        log.info(f"cnnlab: {saved} CPU thread(s), as before the interruption (trainer.num_threads=auto "
                 f"would choose {torch.get_num_threads()} now; the same count keeps the run bit-exact).")
        torch.set_num_threads(saved)
    state.threads = torch.get_num_threads()


def _resume(cfg: RootConfig, run_dir: Path, model, optimizer, schedule, scaler, state: FitState,
            tracker: BestTracker, generator: torch.Generator, device: torch.device,
            steps_per_epoch: int = 0) -> None:
    path = run_dir / "checkpoints" / "last.pt"
    if not path.exists():
        log.info(f"resume=true but {path} does not exist yet: starting from scratch.")
        return
    saved = load_checkpoint(path)
    missing, unexpected = _state_mismatch(model.state_dict(), saved["model"])
    # a changed setting is honoured from here on or refused, never silently replaced by the saved one
    refused, honoured = resume_settings.compare(saved.get("config"), dataclasses.asdict(cfg))
    if refused:
        raise resume_settings.refusal(path, refused, (missing + unexpected)[:8])
    if missing or unexpected:
        raise ConfigError(f"cannot resume from {path}: it was written for a different model or class count "
                          f"(mismatched keys: {', '.join((missing + unexpected)[:8])}). Use a new hydra.run.dir "
                          "or the config that wrote it.")
    fresh_groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    resized = ""
    if any(key == "trainer.max_epochs" for key, _, _ in honoured):
        resized = resize_schedule(schedule, saved["fit"]["step"], cfg.trainer.max_epochs * steps_per_epoch)
    notes = resume_settings.apply(honoured, optimizer, schedule, fresh_groups, getattr(cfg.sched, "min_lr", 0.0), resized) \
        if honoured else []
    if scaler is not None and saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    tracker.load_state_dict(saved["tracker"])
    for key, value in saved["fit"].items():
        setattr(state, key, value)
    _keep_threads(cfg.trainer.num_threads, state, device)
    rng = saved["rng"]
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["data"])
    random.setstate(_as_tuple(rng["python"]))
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    where = (f"at epoch {state.progress['epoch']}, step {state.progress['batch']}" if state.progress
             else f"after epoch {state.epoch}")
    log.info(f"Resumed from {path} {where}.")
    if notes:
        log.info("Changed since the checkpoint, in effect from here: " + "; ".join(notes) + ".")


def _state_mismatch(expected: dict, saved: dict) -> tuple[list, list]:
    missing = [k for k in expected if k not in saved or saved[k].shape != expected[k].shape]
    unexpected = [k for k in saved if k not in expected]
    return missing, unexpected


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
