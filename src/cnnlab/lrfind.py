"""`cnnlab-lrfind`: the learning-rate range test (Smith 2015; fastai's and Lightning's lr_find).

    cnnlab-lrfind                                   # the default job's model, data and optimizer
    cnnlab-lrfind model=resnet18 optim=sgd dataset=cifar10 lr_find.steps=300

Takes the same overrides as `cnnlab`. From a fresh model it trains `lr_find.steps` steps with the
learning rate growing exponentially from `lr_find.start_lr` to `lr_find.end_lr`, and stops early when
the smoothed loss blows up (above 4x the lowest so far, or not finite). The suggestion is where the
smoothed loss falls fastest (per decade of learning rate), before its minimum: a rate at which the
network is learning quickly and still far from diverging. Writes `lr_find.json` (the suggestion and
the curve) and `lr_find.png` into its own run folder (`outputs/lr_find/DATE/TIME`), and nothing else:
no checkpoint, no results.json, no .hydra/ (lr_find.json holds the overrides), the model is thrown away. It prints the command that trains with it.
"""
from __future__ import annotations

import json
import logging
import math
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

from cnnlab import atomic
from cnnlab.errors import TrainingError, write_failure

log = logging.getLogger("cnnlab")

DIVERGED = 4.0  # the smoothed loss above this many times its lowest: the range test stops
SMOOTHING = 0.95  # exponential moving average of the loss, bias-corrected as fastai does
DEFAULT_DIR = "hydra.run.dir='${cnnlab_unique_dir:outputs/lr_find/${now:%Y-%m-%d}/${now:%H-%M-%S}}'"


def range_test(cfg, run_dir: Path, overrides: List[str]) -> dict:
    """Run the test, write lr_find.json and lr_find.png, print the suggestion; return lr_find.json's dict."""
    import dataclasses

    import torch

    from cnnlab.config import default_data_dir
    from cnnlab.data import build_data
    from cnnlab.models.for_run import build_run_model
    from cnnlab.optim import build_optimizer
    from cnnlab.train.objective import Objective
    from cnnlab.train.threads import apply_threads
    from cnnlab.train.runtime import autocast, autocast_dtype, pick_device, seed_everything, use_channels_last

    lf = cfg.lr_find
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    channels_last = use_channels_last(cfg.trainer.channels_last, cfg.model.family)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    data_dir = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
    data = build_data(cfg.dataset, data_dir, device, generator, channels_last)
    model = build_run_model(cfg, data, device, channels_last)  # as a run builds it
    apply_threads(cfg.trainer.num_threads, model, data.shape, cfg.dataset.batch_size, device)  # as a run does
    optimizer = build_optimizer(dataclasses.replace(cfg.optim, lr=lf.start_lr), model.parameters())
    objective = Objective(cfg.loss, model)
    amp_dtype = autocast_dtype(cfg.trainer.precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    log.info(f"cnnlab-lrfind: {cfg.model.name} on {cfg.dataset.name}, {cfg.optim.name}, lr from {lf.start_lr:g} "
             f"to {lf.end_lr:g} over {lf.steps} steps of {cfg.dataset.batch_size} images, {device.type}, "
             f"run folder {run_dir}")

    factor = (lf.end_lr / lf.start_lr) ** (1 / (lf.steps - 1))
    lrs, losses, smoothed = [], [], []
    average, lowest, stopped = 0.0, math.inf, False
    model.train()
    epoch = 0
    while len(lrs) < lf.steps and not stopped:
        epoch += 1
        data.train.set_epoch(epoch)
        for x, y in data.train:
            lr = lf.start_lr * factor ** len(lrs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device, amp_dtype):
                loss = objective(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            value = loss.item()  # one sync per step: a few hundred steps, once
            average = SMOOTHING * average + (1 - SMOOTHING) * value
            smooth = average / (1 - SMOOTHING ** (len(lrs) + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            if not math.isfinite(smooth) or smooth > DIVERGED * lowest:
                stopped = True
                break
            lowest = min(lowest, smooth)
            if len(lrs) >= lf.steps:
                break
    del model, optimizer  # nothing of this model survives the test

    suggested, lowest_at = suggest(lrs, smoothed)
    result = {"suggested_lr": suggested, "min_loss_lr": lowest_at, "stopped_early": stopped,
              "steps": len(lrs), "start_lr": lf.start_lr, "end_lr": lf.end_lr,
              "model": cfg.model.name, "dataset": cfg.dataset.name, "optim": cfg.optim.name,
              "overrides": list(overrides),
              "curve": {"lr": lrs, "loss": [v if math.isfinite(v) else None for v in losses],
                        "smoothed_loss": [v if math.isfinite(v) else None for v in smoothed]}}
    json_path = run_dir / "lr_find.json"
    with _writing(json_path):
        atomic.write_text(json_path, json.dumps(result, indent=2) + "\n")
    _plot(run_dir / "lr_find.png", result)
    log.info(_report(result, run_dir, overrides))
    return result


def suggest(lrs: List[float], smoothed: List[float]) -> tuple[Optional[float], Optional[float]]:
    """(the learning rate of the steepest fall before the minimum, the one at the minimum).

    The first twentieth of the curve is skipped (the average is still settling), as are the last
    points after the minimum, where the loss is already climbing."""
    finite = [k for k, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 5:
        return None, None
    lowest = min(finite, key=lambda k: smoothed[k])
    skip = max(1, len(lrs) // 20)
    if lowest - skip < 3:
        return None, lrs[lowest]  # the loss never fell: no rate to suggest
    logs = [math.log10(v) for v in lrs]
    slopes = {k: (smoothed[k + 1] - smoothed[k - 1]) / (logs[k + 1] - logs[k - 1]) for k in range(skip, lowest)}
    steepest = min(slopes, key=slopes.get)
    return lrs[steepest], lrs[lowest]


def falling_range(lrs: List[float], smoothed: List[float], drop: float = 0.02) -> tuple[float, float]:
    """Where the smoothed loss falls: from the first rate at which it is `drop` below its start, to its minimum."""
    start = smoothed[max(1, len(lrs) // 20)]
    lowest = min(range(len(smoothed)), key=lambda k: smoothed[k])
    first = next((k for k in range(lowest + 1) if smoothed[k] < start * (1 - drop)), lowest)
    return lrs[first], lrs[lowest]


def train_command(overrides: List[str], lr: float) -> str:
    """`cnnlab ... optim.lr=X`: this run's overrides, its own folder and lr_find keys dropped."""
    kept = [o for o in overrides if not o.partition("=")[0].lstrip("+~").startswith(("hydra.", "lr_find.", "optim.lr"))]
    return " ".join(["cnnlab", *map(shlex.quote, kept), f"optim.lr={lr:.2g}"])


def _report(result: dict, run_dir: Path, overrides: List[str]) -> str:
    curve = result["curve"]
    end = (f"stopped at lr {curve['lr'][-1]:.2g}: the loss blew up" if result["stopped_early"]
           else f"up to lr {curve['lr'][-1]:.2g}")
    where = f"{result['steps']} steps, {end}. Curve in {run_dir / 'lr_find.png'}"
    if result["suggested_lr"] is None:
        return (f"The loss did not fall over the range ({where}), so there is no learning rate to suggest: check "
                "the setup (`cnnlab trainer.overfit_batches=2` should reach ~100%) or widen "
                "lr_find.start_lr/lr_find.end_lr.")
    return (f"Suggested learning rate: {result['suggested_lr']:.2g} (the smoothed loss falls fastest there; "
            f"lowest at {result['min_loss_lr']:.2g}; {where}).\nTrain with it:\n  "
            f"{train_command(overrides, result['suggested_lr'])}")


def _plot(path: Path, result: dict) -> None:
    from cnnlab.report.figures import pyplot, save_figure

    plt = pyplot()
    curve = result["curve"]
    lrs = curve["lr"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    raw = [v if v is not None else math.nan for v in curve["loss"]]
    smooth = [v if v is not None else math.nan for v in curve["smoothed_loss"]]
    ax.plot(lrs, raw, color="#9bb8d3", linewidth=0.8, label="loss per step")
    ax.plot(lrs, smooth, color="#1f4e79", linewidth=2, label="smoothed")
    finite = [v for v in smooth + raw if math.isfinite(v)]
    if finite:  # keep the blow-up from squashing the curve
        low, high = min(finite), min(max(finite), 1.5 * max(smooth[0], raw[0]))
        ax.set_ylim(low - 0.05 * (high - low), high)
    if result["suggested_lr"] is not None:
        k = lrs.index(result["suggested_lr"])
        ax.axvline(lrs[k], color="#c0392b", linestyle="--", linewidth=1)
        ax.plot([lrs[k]], [smooth[k]], "o", color="#c0392b", markersize=8,
                label=f"suggested lr {result['suggested_lr']:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"learning-rate range test: {result['model']} on {result['dataset']}, {result['optim']}",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    with _writing(path):
        save_figure(plt, fig, path)  # the report's figure writer: laid out, drawn at 100 dpi, replaced whole


@contextmanager
def _writing(path: Path):
    """A failed write of one of the range test's files, as the error a user acts on."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(f"could not write {path}: {write_failure(exc)}.") from None


# ---------------------------------------------------------------- the command line
def with_default_dir(argv: List[str]) -> List[str]:
    """The finder's own folders, outputs/lr_find/DATE/TIME, unless hydra.run.dir is given, and no .hydra/
    in them: lr_find.json holds the overrides, and a report over outputs/ does not take them for runs."""
    keys = {a.partition("=")[0] for a in argv}
    extra = [] if "hydra.run.dir" in keys else [DEFAULT_DIR]
    extra += [] if "hydra.output_subdir" in keys else ["hydra.output_subdir=null"]
    return list(argv) + extra


def _hydra_task(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from cnnlab.config import validate
    from cnnlab.errors import CnnlabError

    global _exit_code
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        range_test(validate(cfg), run_dir, list(hydra_cfg.overrides.task))
    except CnnlabError as exc:
        print(f"cnnlab-lrfind: error: {exc}", file=sys.stderr, flush=True)
        _exit_code = max(_exit_code, exc.exit_code)


_exit_code = 0


def main() -> None:
    from cnnlab import quick_exit

    quick_exit.install()  # torch loaded: leave without the collector's walks at exit
    import hydra

    from cnnlab import cli

    from cnnlab.train import distributed

    groups = [p.name for p in Path(cli._config_dir()).iterdir() if p.is_dir()]
    problem = cli.unknown_key_message(sys.argv[1:], groups) or cli._unwritable_output(sys.argv[1:])
    if distributed.active():
        problem = ("cnnlab-lrfind runs in one process: start it without torchrun (the rate it suggests is "
                   "for dataset.batch_size, the global batch, as `cnnlab` under torchrun uses it).")
    if problem:
        print(f"cnnlab-lrfind: error: {problem}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *with_default_dir(sys.argv[1:])]
    run = hydra.main(config_path=cli._config_dir(), config_name="config", version_base=None)(_hydra_task)
    try:
        run()
    except KeyboardInterrupt:
        print("cnnlab-lrfind: interrupted.", file=sys.stderr)
        sys.exit(130)
    if _exit_code:
        sys.exit(_exit_code)


if __name__ == "__main__":
    main()
