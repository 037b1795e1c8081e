"""Every optimizer and schedule by name: it trains, and the lr follows the schedule's definition."""
import math

import pytest
import torch

from cnnlab.config import OptimConfig, SchedConfig
from cnnlab.optim import build_optimizer, build_schedule, current_lr

OPTIMIZERS = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
              "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
              "adamw": torch.optim.AdamW}


def _fit_quadratic(optimizer, w, steps=50):
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((w - 3.0) ** 2).sum()
        loss.backward()
        optimizer.step()
    return ((w - 3.0) ** 2).sum().item()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_builds_the_right_class_and_descends(name):
    w = torch.nn.Parameter(torch.zeros(4))
    opt = build_optimizer(OptimConfig(name=name, lr=0.3), [w])
    assert type(opt) is OPTIMIZERS[name]
    assert _fit_quadratic(opt, w) < 36.0 * 0.5


def test_momentum_and_nesterov_have_momentum():
    w = torch.nn.Parameter(torch.zeros(1))
    assert build_optimizer(OptimConfig(name="momentum", momentum=0.9), [w]).param_groups[0]["momentum"] == 0.9
    nesterov = build_optimizer(OptimConfig(name="nesterov", momentum=0.9), [w]).param_groups[0]
    assert nesterov["nesterov"] and nesterov["momentum"] == 0.9


def test_frozen_parameters_are_left_out():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    opt = build_optimizer(OptimConfig(name="sgd"), [a, b])
    assert opt.param_groups[0]["params"] == [a]


def _lrs(sched_cfg, epochs=4, steps=5, val_losses=None):
    w = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer(OptimConfig(name="sgd", lr=0.1), [w])
    schedule = build_schedule(sched_cfg, opt, epochs, steps)
    seen = []
    for epoch in range(epochs):
        for _ in range(steps):
            seen.append(current_lr(opt))
            opt.step()
            schedule.after_batch()
        schedule.after_epoch(val_losses[epoch] if val_losses else 1.0)
    return seen


def test_none_is_constant():
    assert set(_lrs(SchedConfig(name="none"))) == {0.1}


def test_step_decays_every_step_size_epochs():
    lrs = _lrs(SchedConfig(name="step", step_size=2, gamma=0.5))
    assert lrs[0] == lrs[9] == 0.1 and math.isclose(lrs[10], 0.05) and math.isclose(lrs[19], 0.05)


def test_cosine_falls_from_lr_towards_min_lr():
    lrs = _lrs(SchedConfig(name="cosine", min_lr=0.01))
    assert lrs[0] == pytest.approx(0.1) and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(0.01, abs=2e-3)


def test_cosine_warmup_rises_first():
    lrs = _lrs(SchedConfig(name="cosine", warmup_epochs=1))
    assert lrs[0] < lrs[2] < lrs[4] and max(lrs) == pytest.approx(0.1)


def test_onecycle_rises_to_lr_then_anneals():
    lrs = _lrs(SchedConfig(name="onecycle", pct_start=0.25))
    peak = lrs.index(max(lrs))
    assert 3 <= peak <= 7 and max(lrs) == pytest.approx(0.1, rel=2e-2) and lrs[-1] < 0.01


def test_plateau_cuts_the_lr_after_patience_epochs_without_improvement():
    lrs = _lrs(SchedConfig(name="plateau", patience=1, factor=0.5), epochs=5, val_losses=[1, 1, 1, 1, 1])
    assert lrs[0] == 0.1 and min(lrs) < 0.1
