"""Each optimizer's and each schedule's typed config: the keys that act in it, and nothing else.

As for the model families (cnnlab/models/schema.py): conf/optim/*.yaml and conf/sched/*.yaml name
their schema first in their defaults list, `validate` builds the same dataclass through the registry,
and `optim=adam optim.momentum=0.9` is refused with Adam's keys. torch-free: cnnlab/optim.py builds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from cnnlab.registry import config_class, register, require


# ---------------------------------------------------------------- optimizers
@dataclass
class OptimCommon:
    """The keys every optimizer has."""
    name: str = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0  # decoupled for adamw, coupled (added to the gradient) otherwise

    def __new__(cls, *args, **kwargs):
        return object.__new__(config_class("optim", OptimCommon, cls, args, kwargs))  # name= picks the class

    def check(self) -> None:
        pass  # lr and weight_decay: cnnlab.config checks them with the other groups' values


def _check_momentum(cfg) -> None:
    require(0 <= cfg.momentum < 1, "optim.momentum", "in [0, 1)", cfg.momentum)


def _check_eps(cfg) -> None:
    require(cfg.eps > 0, "optim.eps", "positive", cfg.eps)


@dataclass
class SGDConfig(OptimCommon):
    name: str = "sgd"
    momentum: float = 0.0

    def check(self) -> None:
        super().check()
        _check_momentum(self)


@dataclass
class MomentumConfig(SGDConfig):
    name: str = "momentum"
    momentum: float = 0.9  # 0 still means 0.9: optim=momentum is momentum even where a sweep zeroes it


@dataclass
class NesterovConfig(MomentumConfig):
    name: str = "nesterov"


@dataclass
class AdagradConfig(OptimCommon):
    name: str = "adagrad"
    eps: float = 1e-8

    def check(self) -> None:
        super().check()
        _check_eps(self)


@dataclass
class RMSpropConfig(OptimCommon):
    name: str = "rmsprop"
    alpha: float = 0.99  # decay of the squared-gradient average
    eps: float = 1e-8
    momentum: float = 0.0

    def check(self) -> None:
        super().check()
        require(0 <= self.alpha < 1, "optim.alpha", "in [0, 1)", self.alpha)
        _check_eps(self)
        _check_momentum(self)


@dataclass
class AdamConfig(OptimCommon):
    name: str = "adam"
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8

    def check(self) -> None:
        super().check()
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas",
                "two values in [0, 1)", list(self.betas))
        _check_eps(self)


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"


_BUILD = "cnnlab.optim:build_optimizer"
register("optim", "sgd", SGDConfig, _BUILD)
register("optim", "momentum", MomentumConfig, _BUILD)
register("optim", "nesterov", NesterovConfig, _BUILD)
register("optim", "adagrad", AdagradConfig, _BUILD)
register("optim", "rmsprop", RMSpropConfig, _BUILD)
register("optim", "adam", AdamConfig, _BUILD)
register("optim", "adamw", AdamWConfig, _BUILD)


# ---------------------------------------------------------------- schedules
@dataclass
class SchedCommon:
    """The keys every schedule has."""
    name: str = "none"

    def __new__(cls, *args, **kwargs):
        return object.__new__(config_class("sched", SchedCommon, cls, args, kwargs))

    def check(self) -> None:
        pass


@dataclass
class NoSchedule(SchedCommon):
    name: str = "none"


@dataclass
class StepSchedule(SchedCommon):
    name: str = "step"
    step_size: int = 10  # epochs between decays
    gamma: float = 0.1  # decay factor

    def check(self) -> None:
        require(self.step_size >= 1, "sched.step_size", "a positive integer", self.step_size)
        require(self.gamma > 0, "sched.gamma", "positive", self.gamma)


@dataclass
class CosineSchedule(SchedCommon):
    name: str = "cosine"
    warmup_epochs: int = 0  # linear warm-up
    min_lr: float = 0.0  # final lr

    def check(self) -> None:
        require(self.warmup_epochs >= 0, "sched.warmup_epochs", ">= 0", self.warmup_epochs)
        require(self.min_lr >= 0, "sched.min_lr", ">= 0", self.min_lr)


@dataclass
class OneCycleSchedule(SchedCommon):
    name: str = "onecycle"
    pct_start: float = 0.25  # part of training spent rising

    def check(self) -> None:
        require(0 < self.pct_start < 1, "sched.pct_start", "in (0, 1)", self.pct_start)


@dataclass
class PlateauSchedule(SchedCommon):
    name: str = "plateau"
    factor: float = 0.1  # lr multiplier
    patience: int = 3  # epochs without improvement
    min_lr: float = 0.0  # floor

    def check(self) -> None:
        require(0 < self.factor < 1, "sched.factor", "in (0, 1)", self.factor)
        require(self.patience >= 0, "sched.patience", ">= 0", self.patience)
        require(self.min_lr >= 0, "sched.min_lr", ">= 0", self.min_lr)


_SCHEDULE = "cnnlab.optim:build_schedule"
register("sched", "none", NoSchedule, _SCHEDULE)
register("sched", "step", StepSchedule, _SCHEDULE)
register("sched", "cosine", CosineSchedule, _SCHEDULE)
register("sched", "onecycle", OneCycleSchedule, _SCHEDULE)
register("sched", "plateau", PlateauSchedule, _SCHEDULE)
