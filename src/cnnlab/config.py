"""The typed schema of a run's config, and the checks that turn a bad value into a clear message.

Hydra composes plain YAML from conf/; `validate` merges it onto these dataclasses so a wrong type or
an unknown key fails before any work, then checks ranges. Every group's schema lives here so one
file answers "what can I set?".
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cnnlab.data_schema import DatasetCommon as DatasetConfig
from cnnlab.errors import ConfigError
from cnnlab import parallelism  # noqa: F401 - registers ${cnnlab_sweep_workers:} (hydra/launcher=auto)
from cnnlab.models.schema import ModelCommon as ModelConfig
from cnnlab.models.schema import model_config
from cnnlab.optim_schema import OptimCommon as OptimConfig
from cnnlab.optim_schema import SchedCommon as SchedConfig
from cnnlab.registry import make_config

# ---------------------------------------------------------------- dataset
# Each source registers its own typed config (cnnlab/data_schema.py): `validate` builds the chosen
# source's, so a key that does nothing with it is refused. DatasetConfig (imported above) is the keys
# every source has. `validate` refuses an unregistered name through the registry (registry.get).


# ---------------------------------------------------------------- model
# Each family registers its own typed config (cnnlab/models/schema.py): `validate` builds the chosen
# family's, so a key that does nothing in it is refused. ModelConfig (imported above) is the keys
# every family has.

# ---------------------------------------------------------------- optimizer, schedule, loss
# Each optimizer and schedule registers its own typed config (cnnlab/optim_schema.py); OptimConfig and
# SchedConfig (imported above) are the keys all of them have.


@dataclass
class LossConfig:
    l1: float = 0.0  # lambda * sum|w| over weights (not biases), added to the loss
    l2: float = 0.0  # 0.5 * lambda * sum w^2 over weights, as in the seeds' NumPy network
    label_smoothing: float = 0.0


# ---------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    patience: Optional[int] = None  # epochs without improvement before stopping (null = off)
    monitor: Optional[str] = None  # alias of trainer.monitor (null = use trainer.monitor)
    min_delta: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    monitor: str = "val/loss"  # val/loss | val/acc: picks best.pt, best_epoch, early stopping, the objective
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    precision: str = "auto"  # auto (bf16 on GPUs that have it, else fp32) | fp32 | bf16 | fp16
    tf32: Optional[bool] = None  # TF32 matmuls/convolutions on CUDA (null = only for precision=auto)
    compile: bool = False  # torch.compile the model
    channels_last: str = "auto"  # auto (every family but mlp) | true | false
    deterministic: bool = False  # torch.use_deterministic_algorithms
    progress: bool = True  # progress bar per epoch
    summary: bool = True  # Keras-style model summary at start
    histograms: bool = False  # weight and activation histograms to TensorBoard each epoch
    diagnostics: bool = True  # after training: confusion matrix and misclassified test images (PNG + TensorBoard)
    sync_every: int = 50  # steps between reads of the running loss for the progress bar
    num_threads: Any = "auto"  # CPU threads: auto (1 for small models or a busy machine) | N | null (PyTorch's)
    checkpoint_every_steps: int = 0  # also write last.pt every N steps mid-epoch (0 = epoch ends only)
    checkpoint_every_s: float = 10.0  # at an epoch's end, write best.pt/last.pt if this long since the last (0 = every epoch)
    keep_freed_memory: bool = True  # CPU buffers reused between batches, not page-faulted anew (train/memory.py)
    test_time_flip: bool = False  # validation and test: each image's probabilities averaged with its mirror image's
    cache_frozen: bool = True  # a frozen, unaugmented conv base's outputs computed once (train/frozen_features.py)
    fast_dev_run: bool = False  # one batch of train, val and test, end to end; writes no files
    overfit_batches: int = 0  # train on the same N batches every epoch (0 = off): a sane setup reaches ~100%


@dataclass
class FinetuneConfig:
    freeze: Optional[str] = None  # null | backbone | all-but-head | a module prefix like "features"
    unfreeze: List[str] = field(default_factory=list)  # module prefixes trained again, e.g. [layer4]


@dataclass
class LrFindConfig:  # cnnlab-lrfind: the learning-rate range test
    start_lr: float = 1e-7  # the first step's learning rate
    end_lr: float = 10.0  # the last one's, if the loss has not blown up before
    steps: int = 200  # steps from start_lr to end_lr, the learning rate growing by the same factor each


@dataclass
class SweepConfig:
    fail_fast: bool = False  # stop the whole sweep at the first failed job
    rerun: str = "unfinished"  # with resume=true: unfinished (every job not completed) | failed (only those)


@dataclass
class RootConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)  # the family's config after validate()
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    lr_find: LrFindConfig = field(default_factory=LrFindConfig)  # read by cnnlab-lrfind only
    sweep: SweepConfig = field(default_factory=SweepConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    data_dir: Optional[str] = None  # where datasets are looked for (default: $CNNLAB_DATA or cache)
    resume: bool = False
    experiment: Optional[str] = None  # set by presets in conf/experiment/


MONITORS = ("val/loss", "val/acc")


def _resolve_monitor(t: TrainerConfig) -> str:
    """trainer.early_stopping.monitor is an alias: set, it wins over trainer.monitor's default."""
    alias = t.early_stopping.monitor
    if alias is None or alias == t.monitor:
        return t.monitor
    if t.monitor != TrainerConfig.monitor:
        raise ConfigError(f"trainer.monitor={t.monitor} and trainer.early_stopping.monitor={alias} disagree: one "
                          "metric picks best.pt, best_epoch and when early stopping stops. Set trainer.monitor "
                          "only (trainer.early_stopping.monitor is its older alias).")
    return alias


def default_data_dir() -> Path:
    env = os.environ.get("CNNLAB_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlab" / "data"


@functools.lru_cache(maxsize=None)
def root_schema() -> DictConfig:
    """RootConfig as an OmegaConf node, made once per process (~15 ms): Hydra's compose loads it as
    cnnlab_schema and every validate merges onto it, and both copy it first."""
    return OmegaConf.structured(RootConfig)


def validate(cfg: DictConfig) -> RootConfig:
    """Return the run's config as typed dataclasses, or raise ConfigError naming the bad key."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    model = plain.pop("model", {})
    optim, sched = plain.pop("optim", {}), plain.pop("sched", {})
    dataset = plain.pop("dataset", {})
    try:
        merged = OmegaConf.merge(root_schema(), plain)  # merge copies it: the cached node stays as made
        settings: RootConfig = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe_omegaconf_error(exc)) from None
    settings.model = model_config(model)  # the family's own dataclass; its keys and ranges checked there
    settings.optim, settings.sched = make_config("optim", optim), make_config("sched", sched)
    settings.dataset = make_config("dataset", dataset)  # the source's own keys: not num_samples on mnist
    _check_ranges(settings)
    from cnnlab.value_checks import check_values
    check_values(settings)  # infinity/NaN anywhere, seeds out of range
    return settings


def _describe_omegaconf_error(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or "?"
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not in struct" in first_line or "Key '" in first_line and "not" in first_line:
        return f"unknown config key '{key}'. Check the spelling; `cnnlab --cfg job` prints every key."
    return f"bad value for '{key}': {first_line}."


def _require(ok: bool, key: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {key} must be {allowed}.")


def _check_ranges(s: RootConfig) -> None:
    d, o, t = s.dataset, s.optim, s.trainer
    _require(d.batch_size >= 1, "dataset.batch_size", "a positive integer", d.batch_size)
    _require(d.eval_batch_size is None or d.eval_batch_size >= 1, "dataset.eval_batch_size",
             "a positive integer or null", d.eval_batch_size)
    _require(0 <= d.val_split < 1, "dataset.val_split", "in [0, 1)", d.val_split)
    _require(d.train_size is None or d.train_size >= 1, "dataset.train_size",
             "a positive integer or null", d.train_size)
    _require(d.image_size is None or d.image_size >= 1, "dataset.image_size",
             "a positive integer or null", d.image_size)
    _require(d.augment.crop >= 0, "dataset.augment.crop", "a padding >= 0 (0 = off)", d.augment.crop)
    for name in ("mean", "std"):
        values = getattr(d, name)
        _require(values is None or len(values) >= 1, f"dataset.{name}", "a list of floats or null", values)
    _require(d.std is None or all(v > 0 for v in d.std), "dataset.std", "positive", d.std)

    _require(o.lr > 0, "optim.lr", "positive", o.lr)
    _require(o.weight_decay >= 0, "optim.weight_decay", ">= 0", o.weight_decay)

    _require(s.loss.l1 >= 0, "loss.l1", ">= 0", s.loss.l1)
    _require(s.loss.l2 >= 0, "loss.l2", ">= 0", s.loss.l2)
    _require(0 <= s.loss.label_smoothing < 1, "loss.label_smoothing", "in [0, 1)", s.loss.label_smoothing)

    _require(t.max_epochs >= 0, "trainer.max_epochs", "an integer >= 0", t.max_epochs)
    es = t.early_stopping
    _require(es.patience is None or es.patience >= 1, "trainer.early_stopping.patience",
             "null (off) or an integer >= 1 (0 would stop after the first epoch)", es.patience)
    _require(t.monitor in MONITORS, "trainer.monitor", "val/loss or val/acc", t.monitor)
    _require(es.monitor is None or es.monitor in MONITORS, "trainer.early_stopping.monitor",
             "null (use trainer.monitor), val/loss or val/acc", es.monitor)
    t.monitor = _resolve_monitor(t)
    _require(t.precision in ("auto", "fp32", "bf16", "fp16"), "trainer.precision",
             "auto, fp32, bf16 or fp16", t.precision)
    _require(str(t.channels_last).lower() in ("auto", "true", "false"), "trainer.channels_last",
             "auto, true or false", t.channels_last)
    _require(t.sync_every >= 1, "trainer.sync_every", "a positive integer", t.sync_every)
    _require(t.num_threads in (None, "auto") or type(t.num_threads) is int and t.num_threads >= 1,
             "trainer.num_threads", "auto, a positive integer or null", t.num_threads)
    _require(t.checkpoint_every_s >= 0 and math.isfinite(t.checkpoint_every_s), "trainer.checkpoint_every_s",
             "a number of seconds >= 0 (0 = every epoch)", t.checkpoint_every_s)
    _require(t.checkpoint_every_steps >= 0, "trainer.checkpoint_every_steps", "an integer >= 0 (0 = off)",
             t.checkpoint_every_steps)
    _require(t.overfit_batches >= 0, "trainer.overfit_batches", "an integer >= 0 (0 = off)", t.overfit_batches)
    if t.fast_dev_run and s.resume:
        raise ConfigError("trainer.fast_dev_run=true writes nothing and reads no checkpoint, so it cannot "
                          "resume: drop resume=true (or trainer.fast_dev_run).")

    lf = s.lr_find
    _require(lf.start_lr > 0, "lr_find.start_lr", "positive", lf.start_lr)
    _require(lf.end_lr > lf.start_lr, "lr_find.end_lr", f"above lr_find.start_lr ({lf.start_lr:g})", lf.end_lr)
    _require(lf.steps >= 20, "lr_find.steps", "an integer >= 20", lf.steps)

    _require(s.sweep.rerun in ("unfinished", "failed"), "sweep.rerun", "unfinished or failed", s.sweep.rerun)

    dev = s.device
    _require(dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:") and dev[5:].isdigit(),
             "device", "auto, cpu, cuda or cuda:N", dev)
