"""Each model family's typed config: the keys that act in it, and nothing else.

A preset in conf/model/ names its family's schema first in its defaults list (`/schema/model/resnet`),
so Hydra refuses `model=resnet18 model.inception=naive`; `validate` builds the same dataclass through
the registry, which refuses it with the family's own list of keys. The builders live beside each
family (cnnlab/models/resnet.py, ...) and load with torch only when a model is built; this module
stays torch-free so the command line checks a config without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from cnnlab.registry import config_class, get, register, require

ACTIVATIONS = ("relu", "sigmoid", "tanh")
INITS = ("default", "normal", "xavier", "he")
STEMS = ("auto", "cifar", "imagenet")


@dataclass
class ModelCommon:
    """The keys every family has."""
    name: str = "lecture_cnn"  # the preset's name, shown in summaries and reports
    family: str = "cnn"
    activation: str = "relu"  # relu | sigmoid | tanh
    init: str = "default"  # default (PyTorch's, or the architecture's own) | normal (init_std) | xavier | he
    init_std: float = 0.01
    dropout: float = 0.0
    binary_head: bool = False  # one sigmoid output for two classes (Keras' Dense(1, sigmoid))
    pretrained: Optional[str] = None  # null | imagenet | path to a cnnlab checkpoint

    # keys the family's builder ignored before this registry existed: dropped from old checkpoints'
    # configs (which hold every family's keys) so that they rebuild the network they trained
    LEGACY_IGNORED = ()
    CHOICES = {"activation": ACTIVATIONS, "init": INITS}  # listed in the README's table

    def __new__(cls, *args, **kwargs):
        return super().__new__(config_class("model", ModelCommon, cls, args, kwargs))  # family= picks the class

    def check(self) -> None:
        require(self.activation in ACTIVATIONS, "model.activation", "one of " + ", ".join(ACTIVATIONS),
                self.activation)
        require(self.init in INITS, "model.init", "one of " + ", ".join(INITS), self.init)
        require(self.init_std > 0, "model.init_std", "positive", self.init_std)
        require(0 <= self.dropout < 1, "model.dropout", "in [0, 1)", self.dropout)


def _check_width(cfg: Any) -> None:
    require(cfg.width >= 1, "model.width", "a positive integer (channels of the first stage)", cfg.width)
    require(cfg.stem in STEMS, "model.stem", "auto, cifar or imagenet", cfg.stem)


@dataclass
class MLPConfig(ModelCommon):
    family: str = "mlp"
    hidden: List[int] = field(default_factory=list)  # hidden layer sizes ([] = softmax regression)
    batch_norm: bool = False  # after every hidden layer

    def check(self) -> None:
        super().check()
        require(all(size >= 1 for size in self.hidden), "model.hidden",
                "a list of layer sizes >= 1 (a 0-wide layer passes nothing on)", list(self.hidden))


@dataclass
class CNNConfig(ModelCommon):
    family: str = "cnn"
    blocks: List[List[int]] = field(default_factory=lambda: [[32, 64]])  # conv channels per block
    kernel_size: int = 3
    padding: str = "valid"  # valid | same
    pool: Any = True  # max pool after each block: true/false for all, or one per block
    pool_ceil: bool = False  # an odd map pools to the larger size (7x7 -> 4x4), keeping its last row and column
    dense: List[int] = field(default_factory=lambda: [128])  # dense layers after the flatten
    batch_norm: bool = False  # conv -> pool -> BN -> activation; Dense -> BN -> activation
    whiten: bool = False  # first conv = fixed whitening filters of the training patches, not trained (models/whiten.py)

    def check(self) -> None:
        super().check()
        require(not (self.whiten and self.pretrained), "model.whiten",
                "false with model.pretrained (whitening would overwrite the pretrained first convolution)",
                self.whiten)
        require(all(len(block) >= 1 and all(c >= 1 for c in block) for block in self.blocks), "model.blocks",
                "a list of blocks, each a non-empty list of channel counts >= 1", [list(b) for b in self.blocks])
        require(all(size >= 1 for size in self.dense), "model.dense", "a list of layer sizes >= 1",
                list(self.dense))
        require(self.kernel_size >= 1, "model.kernel_size", "a positive integer", self.kernel_size)
        require(self.padding in ("valid", "same"), "model.padding", "valid or same", self.padding)
        flags = self.pool if isinstance(self.pool, list) else None
        require(isinstance(self.pool, bool) or (flags is not None and all(isinstance(p, bool) for p in flags)),
                "model.pool", "true, false, or a list of true/false (one per block)", self.pool)
        require(flags is None or len(flags) == len(self.blocks), "model.pool",
                f"a single true/false or one per block ({len(self.blocks)} here)", self.pool)


@dataclass
class VGGConfig(ModelCommon):
    family: str = "vgg"
    depth: int = 16  # 11 | 13 | 16 | 19
    batch_norm: bool = False  # true: BN after every convolution (torchvision's vgg*_bn)
    width: int = 64  # channels of the first stage (64 = the paper's); every layer scales with it
    stem: str = "auto"  # auto | cifar (1x1 map, 512-wide head) | imagenet (7x7 map, 4096-wide head)
    head: str = "full"  # full (3 dense layers) | linear (Flatten -> Dropout -> Dense, seed 000)

    def check(self) -> None:
        super().check()
        require(self.depth in (11, 13, 16, 19), "model.depth", "11, 13, 16 or 19", self.depth)
        _check_width(self)
        require(self.head in ("full", "linear"), "model.head", "full or linear", self.head)


@dataclass
class AlexNetConfig(ModelCommon):
    family: str = "alexnet"
    width: int = 64  # channels of the first conv (64 = torchvision's); every layer scales with it
    stem: str = "auto"  # auto | cifar (3x3 stride-1 first conv) | imagenet (11x11 stride 4)

    LEGACY_IGNORED = ("width",)

    def check(self) -> None:
        super().check()
        _check_width(self)


@dataclass
class InceptionConfig(ModelCommon):
    family: str = "inception"
    inception: str = "reduced"  # reduced (1x1 reductions, the paper's) | naive
    aux_heads: bool = False  # the two auxiliary classifiers, 0.3 x their loss in training
    batch_norm: bool = True  # BN after every convolution (torchvision's); false is the 2014 paper's
    width: int = 64  # every channel count x width/64 (64 = the paper's)
    stem: str = "auto"  # auto | cifar (full resolution to the first module) | imagenet (8x down)

    def check(self) -> None:
        super().check()
        require(self.inception in ("naive", "reduced"), "model.inception", "naive or reduced", self.inception)
        _check_width(self)


@dataclass
class ResNetConfig(ModelCommon):
    family: str = "resnet"
    depth: int = 18  # 18 | 34 | 50
    residual: bool = True  # false: the plain twin, the same layers without the skips
    batch_norm: bool = True  # false: no BN layers, convolutions get biases instead
    width: int = 64  # channels of the first stage (64 = the paper's), doubled per stage
    stem: str = "auto"  # auto | cifar (3x3 stride-1 conv, no max pool) | imagenet (7x7/2 conv, max pool)

    LEGACY_IGNORED = ("batch_norm",)

    def check(self) -> None:
        super().check()
        require(self.depth in (18, 34, 50), "model.depth", "18, 34 or 50", self.depth)
        _check_width(self)


register("model", "mlp", MLPConfig, "cnnlab.models.mlp:build_mlp")
register("model", "cnn", CNNConfig, "cnnlab.models.cnn:build_cnn")
register("model", "vgg", VGGConfig, "cnnlab.models.vgg:build_vgg")
register("model", "alexnet", AlexNetConfig, "cnnlab.models.alexnet:build_alexnet")
register("model", "inception", InceptionConfig, "cnnlab.models.inception:build_googlenet")
register("model", "resnet", ResNetConfig, "cnnlab.models.resnet:build_resnet")


def model_config(values: dict) -> ModelCommon:
    """The family's typed config from plain values (a composed `model` node, a test's dict)."""
    from cnnlab.registry import make_config

    return make_config("model", dict(values))


def saved_model_config(values: dict) -> ModelCommon:
    """The family's config from a checkpoint's `config["model"]`, of this version or an older one.

    Older checkpoints hold the keys of every family (one flat config): those that did not act in
    this family are dropped, including the ones it acts on now but ignored then.
    """
    entry = get("model", values.get("family"))
    keys = entry.keys()
    if any(k not in keys for k in values):
        values = {k: v for k, v in values.items() if k in keys and k not in entry.config.LEGACY_IGNORED}
    return model_config(values)
