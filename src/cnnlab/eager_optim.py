"""torch.optim's optimizers, minus the torch._dynamo import their methods trigger on first use.

torch.optim wraps `step`, `zero_grad`, `add_param_group` and `(load_)state_dict` so that
torch.compile leaves them alone (PyTorch 2.x). The wrappers import torch._dynamo the first time
they run: about 2 s on a 2-core CPU, as long as `import torch` itself, and half of a default run's
start-up. cnnlab always calls the optimizer outside compiled code (`trainer.compile` compiles the
model only), so it needs none of that: these subclasses call the same methods unwrapped. The
arithmetic is PyTorch's own, step for step; tests/test_optim.py checks that they match.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import torch
from torch.optim import Optimizer


def _unwrapped(method: Callable) -> Callable:
    # functools.wraps keeps the decorated function as __wrapped__; unwrap follows the chain down.
    return inspect.unwrap(method)


_add_param_group = _unwrapped(Optimizer.add_param_group)
_zero_grad = _unwrapped(Optimizer.zero_grad)
_state_dict = _unwrapped(Optimizer.state_dict)
_load_state_dict = _unwrapped(Optimizer.load_state_dict)


class _WithoutDynamo:
    """Mixin placed before a torch.optim class, which subclasses name as `_torch_class`."""

    _torch_class: type
    _torch_step: Callable

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._torch_step = staticmethod(_unwrapped(cls._torch_class.step))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _add_param_group(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _zero_grad(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _state_dict(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # `fused` and `foreach` say how this process computes the update, which depends on its device,
        # not where training stands: keep this optimizer's, so a run saved on a CPU resumes on a GPU.
        kernels = [{k: group[k] for k in ("fused", "foreach") if k in group} for group in self.param_groups]
        _load_state_dict(self, state_dict)
        for group, kept in zip(self.param_groups, kernels):
            group.update(kept)

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        # What the step decorator does minus its graph breaks: the update itself is not differentiated.
        with torch.no_grad():
            return self._torch_step(self, closure)


class SGD(_WithoutDynamo, torch.optim.SGD):
    _torch_class = torch.optim.SGD


class Adagrad(_WithoutDynamo, torch.optim.Adagrad):
    _torch_class = torch.optim.Adagrad


class RMSprop(_WithoutDynamo, torch.optim.RMSprop):
    _torch_class = torch.optim.RMSprop


class Adam(_WithoutDynamo, torch.optim.Adam):
    _torch_class = torch.optim.Adam


class AdamW(_WithoutDynamo, torch.optim.AdamW):
    _torch_class = torch.optim.AdamW
