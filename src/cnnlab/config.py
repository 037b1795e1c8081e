"""The typed schema of a run's config, and the checks that turn a bad value into a clear message.

Hydra composes plain YAML from conf/; `validate` merges it onto these dataclasses so a wrong type or
an unknown key fails before any work, then checks ranges. Every group's schema lives here so one
file answers "what can I set?".
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cnnlab.errors import ConfigError

# ---------------------------------------------------------------- dataset
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "folder", "synthetic")


@dataclass
class AugmentConfig:
    crop: int = 0  # random crop after zero-padding by this many pixels (0 = off)
    flip: bool = False  # random horizontal flip


@dataclass
class DatasetConfig:
    name: str = "digits"
    batch_size: int = 64  # training batch
    eval_batch_size: Optional[int] = None  # validation/test batch (default: 4x batch_size)
    val_split: float = 0.1  # part of train held out when the set has no validation split
    train_size: Optional[int] = None  # use only the first N training images
    classes: Optional[List[int]] = None  # keep only these class indices, relabelled 0..k-1 (null = all)
    path: Optional[str] = None  # folder: one subfolder per class, or train/ and val/
    image_size: Optional[int] = None  # folder: shorter side scaled to this, center-cropped square (null = 64)
    shape: List[int] = field(default_factory=lambda: [3, 32, 32])  # synthetic: C, H, W
    num_classes: int = 10  # synthetic
    num_samples: int = 1024  # synthetic: training images (val/test get a quarter each)
    download: bool = True  # let torchvision download missing files
    mean: Optional[List[float]] = None  # per channel, 0..1 scale (default: from the train split)
    std: Optional[List[float]] = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


# ---------------------------------------------------------------- model
FAMILIES = ("mlp", "cnn", "vgg", "alexnet", "inception", "resnet")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
INITS = ("default", "normal", "xavier", "he")


@dataclass
class ModelConfig:
    name: str = "lecture_cnn"  # the preset's name, shown in summaries and reports
    family: str = "cnn"
    activation: str = "relu"
    init: str = "default"  # default (PyTorch's) | normal (init_std) | xavier | he
    init_std: float = 0.01
    dropout: float = 0.0
    batch_norm: bool = False
    # mlp: hidden layer sizes
    hidden: List[int] = field(default_factory=list)
    # cnn: conv channels per block (a block is one or more convs then an optional pool)
    blocks: List[List[int]] = field(default_factory=list)
    kernel_size: int = 3
    padding: str = "valid"  # valid | same
    pool: Any = True  # bool for every block, or a list with one bool per block
    dense: List[int] = field(default_factory=list)  # cnn: dense layers after flatten
    binary_head: bool = False  # one sigmoid output for two classes (Keras' Dense(1, sigmoid))
    # vgg / resnet
    depth: int = 18
    residual: bool = True  # resnet: false gives the plain twin
    width: int = 64  # resnet/vgg/googlenet: channels of the first stage (googlenet: every layer x width/64)
    stem: str = "auto"  # auto | cifar | imagenet
    head: str = "full"  # vgg: full (torchvision's 3 dense layers) | linear (Flatten -> Dropout -> Dense, seed 000)
    # inception
    inception: str = "reduced"  # naive | reduced
    aux_heads: bool = False
    # transfer learning
    pretrained: Optional[str] = None  # null | imagenet | path to a cnnlab checkpoint


# ---------------------------------------------------------------- optimizer, schedule, loss
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle", "plateau")


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0  # decoupled for adamw, coupled (added to the gradient) otherwise
    momentum: float = 0.0  # sgd family
    alpha: float = 0.99  # rmsprop: decay of the squared-gradient average
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class SchedConfig:
    name: str = "none"
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step: decay factor
    warmup_epochs: int = 0  # cosine: linear warm-up
    min_lr: float = 0.0  # cosine: final lr; plateau: floor
    pct_start: float = 0.25  # onecycle: part of training spent rising
    factor: float = 0.1  # plateau: lr multiplier
    patience: int = 3  # plateau: epochs without improvement


@dataclass
class LossConfig:
    l1: float = 0.0  # lambda * sum|w| over weights (not biases), added to the loss
    l2: float = 0.0  # 0.5 * lambda * sum w^2 over weights, as in the seeds' NumPy network
    label_smoothing: float = 0.0


# ---------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    patience: Optional[int] = None  # epochs without improvement before stopping (null = off)
    monitor: str = "val/loss"  # val/loss | val/acc
    min_delta: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    precision: str = "auto"  # auto (bf16 on GPUs that have it, else fp32) | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the model
    channels_last: str = "auto"  # auto (every family but mlp) | true | false
    deterministic: bool = False  # torch.use_deterministic_algorithms
    progress: bool = True  # progress bar per epoch
    summary: bool = True  # Keras-style model summary at start
    histograms: bool = False  # weight and activation histograms to TensorBoard each epoch
    diagnostics: bool = True  # after training: confusion matrix and misclassified test images (PNG + TensorBoard)
    sync_every: int = 50  # steps between reads of the running loss for the progress bar
    num_threads: Optional[int] = None  # CPU threads (default: PyTorch's choice)
    checkpoint_every_steps: int = 0  # also write last.pt every N steps mid-epoch (0 = epoch ends only)


@dataclass
class FinetuneConfig:
    freeze: Optional[str] = None  # null | backbone | all-but-head | a module prefix like "features"
    unfreeze: List[str] = field(default_factory=list)  # module prefixes trained again, e.g. [layer4]


@dataclass
class SweepConfig:
    fail_fast: bool = False  # stop the whole sweep at the first failed job
    rerun: str = "unfinished"  # with resume=true: unfinished (every job not completed) | failed (only those)


@dataclass
class RootConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    data_dir: Optional[str] = None  # where datasets are looked for (default: $CNNLAB_DATA or cache)
    resume: bool = False
    experiment: Optional[str] = None  # set by presets in conf/experiment/


def default_data_dir() -> Path:
    env = os.environ.get("CNNLAB_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlab" / "data"


def validate(cfg: DictConfig) -> RootConfig:
    """Return the run's config as typed dataclasses, or raise ConfigError naming the bad key."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RootConfig), plain)
        settings: RootConfig = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe_omegaconf_error(exc)) from None
    _check_ranges(settings)
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
    d, m, o, sc, t = s.dataset, s.model, s.optim, s.sched, s.trainer
    _require(d.name in DATASETS, "dataset.name", "one of " + ", ".join(DATASETS), d.name)
    if d.name == "folder" and not d.path:
        raise ConfigError("dataset=folder needs the folder of images: add dataset.path=DIR (one subfolder "
                          "per class, or train/ and val/ subfolders).")
    _require(d.batch_size >= 1, "dataset.batch_size", "a positive integer", d.batch_size)
    _require(d.eval_batch_size is None or d.eval_batch_size >= 1, "dataset.eval_batch_size",
             "a positive integer or null", d.eval_batch_size)
    _require(0 <= d.val_split < 1, "dataset.val_split", "in [0, 1)", d.val_split)
    _require(d.train_size is None or d.train_size >= 1, "dataset.train_size",
             "a positive integer or null", d.train_size)
    _require(d.image_size is None or d.image_size >= 1, "dataset.image_size",
             "a positive integer or null", d.image_size)
    _require(len(d.shape) == 3 and all(v >= 1 for v in d.shape), "dataset.shape",
             "[channels, height, width] of positive integers", list(d.shape))
    _require(d.num_classes >= 2, "dataset.num_classes", "at least 2", d.num_classes)
    _require(d.num_samples >= 1, "dataset.num_samples", "a positive integer", d.num_samples)
    _require(d.augment.crop >= 0, "dataset.augment.crop", "a padding >= 0 (0 = off)", d.augment.crop)
    for name in ("mean", "std"):
        values = getattr(d, name)
        _require(values is None or len(values) >= 1, f"dataset.{name}", "a list of floats or null", values)
    _require(d.std is None or all(v > 0 for v in d.std), "dataset.std", "positive", d.std)

    _require(m.family in FAMILIES, "model.family", "one of " + ", ".join(FAMILIES), m.family)
    _require(m.activation in ACTIVATIONS, "model.activation", "one of " + ", ".join(ACTIVATIONS), m.activation)
    _require(m.init in INITS, "model.init", "one of " + ", ".join(INITS), m.init)
    _require(m.init_std > 0, "model.init_std", "positive", m.init_std)
    _require(0 <= m.dropout < 1, "model.dropout", "in [0, 1)", m.dropout)
    _require(m.kernel_size >= 1, "model.kernel_size", "a positive integer", m.kernel_size)
    _require(m.padding in ("valid", "same"), "model.padding", "valid or same", m.padding)
    _require(isinstance(m.pool, bool) or (isinstance(m.pool, list) and all(isinstance(p, bool) for p in m.pool)),
             "model.pool", "true, false, or a list of true/false (one per block)", m.pool)
    _require(m.width >= 1, "model.width", "a positive integer", m.width)
    _require(m.stem in ("auto", "cifar", "imagenet"), "model.stem", "auto, cifar or imagenet", m.stem)
    _require(m.head in ("full", "linear"), "model.head", "full or linear", m.head)
    _require(m.inception in ("naive", "reduced"), "model.inception", "naive or reduced", m.inception)

    _require(o.name in OPTIMIZERS, "optim.name", "one of " + ", ".join(OPTIMIZERS), o.name)
    _require(o.lr > 0, "optim.lr", "positive", o.lr)
    _require(o.weight_decay >= 0, "optim.weight_decay", ">= 0", o.weight_decay)
    _require(0 <= o.momentum < 1, "optim.momentum", "in [0, 1)", o.momentum)
    _require(0 <= o.alpha < 1, "optim.alpha", "in [0, 1)", o.alpha)
    _require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas",
             "two values in [0, 1)", list(o.betas))
    _require(o.eps > 0, "optim.eps", "positive", o.eps)

    _require(sc.name in SCHEDULES, "sched.name", "one of " + ", ".join(SCHEDULES), sc.name)
    _require(sc.step_size >= 1, "sched.step_size", "a positive integer", sc.step_size)
    _require(sc.gamma > 0, "sched.gamma", "positive", sc.gamma)
    _require(sc.warmup_epochs >= 0, "sched.warmup_epochs", ">= 0", sc.warmup_epochs)
    _require(sc.min_lr >= 0, "sched.min_lr", ">= 0", sc.min_lr)
    _require(0 < sc.pct_start < 1, "sched.pct_start", "in (0, 1)", sc.pct_start)
    _require(0 < sc.factor < 1, "sched.factor", "in (0, 1)", sc.factor)
    _require(sc.patience >= 0, "sched.patience", ">= 0", sc.patience)

    _require(s.loss.l1 >= 0, "loss.l1", ">= 0", s.loss.l1)
    _require(s.loss.l2 >= 0, "loss.l2", ">= 0", s.loss.l2)
    _require(0 <= s.loss.label_smoothing < 1, "loss.label_smoothing", "in [0, 1)", s.loss.label_smoothing)

    _require(t.max_epochs >= 0, "trainer.max_epochs", "an integer >= 0", t.max_epochs)
    es = t.early_stopping
    _require(es.patience is None or es.patience >= 0, "trainer.early_stopping.patience",
             "null (off) or an integer >= 0", es.patience)
    _require(es.monitor in ("val/loss", "val/acc"), "trainer.early_stopping.monitor",
             "val/loss or val/acc", es.monitor)
    _require(t.precision in ("auto", "fp32", "bf16", "fp16"), "trainer.precision",
             "auto, fp32, bf16 or fp16", t.precision)
    _require(str(t.channels_last).lower() in ("auto", "true", "false"), "trainer.channels_last",
             "auto, true or false", t.channels_last)
    _require(t.sync_every >= 1, "trainer.sync_every", "a positive integer", t.sync_every)
    _require(t.num_threads is None or t.num_threads >= 1, "trainer.num_threads",
             "a positive integer or null", t.num_threads)
    _require(t.checkpoint_every_steps >= 0, "trainer.checkpoint_every_steps", "an integer >= 0 (0 = off)",
             t.checkpoint_every_steps)

    _require(s.sweep.rerun in ("unfinished", "failed"), "sweep.rerun", "unfinished or failed", s.sweep.rerun)

    dev = s.device
    _require(dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:") and dev[5:].isdigit(),
             "device", "auto, cpu, cuda or cuda:N", dev)
