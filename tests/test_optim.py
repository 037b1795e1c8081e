"""Every optimizer and schedule by name: it trains, it steps exactly as torch.optim's class does, and
the lr follows the schedule's definition."""
import inspect
import math
import subprocess
import sys

import pytest
import torch

from cnnlab import registry
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
    assert isinstance(opt, OPTIMIZERS[name])
    assert _fit_quadratic(opt, w) < 36.0 * 0.5


def _torch_twin(opt):
    """The stock torch.optim optimizer with the same hyperparameters, on a copy of the parameters."""
    torch_class = type(opt)._torch_class
    accepted = inspect.signature(torch_class.__init__).parameters
    hyper = {k: v for k, v in opt.param_groups[0].items() if k in accepted and k != "params"}
    params = [torch.nn.Parameter(p.detach().clone()) for p in opt.param_groups[0]["params"]]
    return torch_class(params, **hyper)


def _steps(opt, n, seed):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.randn(p.shape, generator=generator)
        opt.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_exactly_like_torch_optim_through_a_state_dict_round_trip(name):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]
    momentum = {"momentum": 0.5} if "momentum" in registry.get("optim", name).keys() else {}  # where it acts
    ours = build_optimizer(OptimConfig(name=name, lr=0.05, weight_decay=1e-3, **momentum), params)
    theirs = _torch_twin(ours)
    _steps(ours, 3, seed=1)
    _steps(theirs, 3, seed=1)
    # resume ours from its checkpoint into a fresh optimizer, as `trainer.resume` does
    resumed = build_optimizer(OptimConfig(name=name, lr=0.05, weight_decay=1e-3, **momentum), params)
    resumed.load_state_dict(ours.state_dict())
    _steps(resumed, 3, seed=2)
    _steps(theirs, 3, seed=2)
    for mine, reference in zip(params, theirs.param_groups[0]["params"]):
        assert torch.equal(mine, reference)


@pytest.mark.parametrize("name, fused", [("sgd", True), ("momentum", True), ("adagrad", True),
                                         ("adam", True), ("adamw", True), ("rmsprop", None)])
def test_cpu_parameters_get_the_fused_kernel_where_pytorch_has_one(name, fused):
    opt = build_optimizer(OptimConfig(name=name), [torch.nn.Parameter(torch.zeros(2))])
    assert opt.param_groups[0].get("fused") is fused


def test_a_checkpoint_keeps_the_kernel_choice_of_the_optimizer_it_is_loaded_into():
    # AdaGrad's fused kernel is CPU only: a state saved elsewhere (fused unset) must not switch it off
    # here, nor a CPU state switch it on on a GPU
    w = torch.nn.Parameter(torch.ones(2))
    saved = build_optimizer(OptimConfig(name="adagrad"), [w]).state_dict()
    saved["param_groups"][0]["fused"] = None
    opt = build_optimizer(OptimConfig(name="adagrad"), [w])
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["fused"] is True


def test_training_with_every_optimizer_leaves_torch_dynamo_unimported():
    # torch.optim's wrappers import torch._dynamo on first use: 2 s of start-up on a 2-core CPU
    script = """
import sys, torch
from cnnlab.config import OptimConfig, SchedConfig
from cnnlab.optim import build_optimizer, build_schedule
for name in ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"]:
    w = torch.nn.Parameter(torch.ones(2))
    opt = build_optimizer(OptimConfig(name=name), [w])
    schedule = build_schedule(SchedConfig(name="onecycle"), opt, epochs=1, steps_per_epoch=2)
    opt.zero_grad()
    (w ** 2).sum().backward()
    opt.step()
    schedule.after_batch()
    opt.load_state_dict(opt.state_dict())
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop"])
def test_onecycle_gives_no_momentum_to_an_optimizer_without_it(name):
    w = torch.nn.Parameter(torch.zeros(1))
    momentum = {"momentum": 0.0} if "momentum" in registry.get("optim", name).keys() else {}  # adagrad has none
    opt = build_optimizer(OptimConfig(name=name, lr=0.1, **momentum), [w])
    schedule = build_schedule(SchedConfig(name="onecycle"), opt, epochs=2, steps_per_epoch=5)
    opt.step()
    schedule.after_batch()
    assert opt.param_groups[0].get("momentum", 0.0) == 0.0


def test_onecycle_cycles_momentum_where_there_is_some():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer(OptimConfig(name="momentum", lr=0.1), [w])
    schedule = build_schedule(SchedConfig(name="onecycle"), opt, epochs=2, steps_per_epoch=5)
    first = opt.param_groups[0]["momentum"]
    for _ in range(3):
        opt.step()
        schedule.after_batch()
    assert opt.param_groups[0]["momentum"] < first


def test_plateau_cuts_the_lr_after_patience_epochs_without_improvement():
    lrs = _lrs(SchedConfig(name="plateau", patience=1, factor=0.5), epochs=5, val_losses=[1, 1, 1, 1, 1])
    assert lrs[0] == 0.1 and min(lrs) < 0.1
