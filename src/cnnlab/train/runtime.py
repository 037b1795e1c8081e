"""Where and how a run computes: device, seeds, precision, threads."""
from __future__ import annotations

import os
import random
from contextlib import nullcontext
from typing import ContextManager, Optional

import numpy as np
import torch

from cnnlab.errors import ConfigError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={name} but PyTorch sees no CUDA GPU on this machine "
                          f"(torch {torch.__version__}). Use device=cpu or device=auto.")
    index = int(name.split(":")[1]) if ":" in name else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"device={name} does not exist: this machine has {count} CUDA device(s), "
                          f"cuda:0 to cuda:{count - 1}. Use one of those or device=auto.")
    return torch.device("cuda", index)


def seed_everything(seed: int) -> None:
    """Reset every random number generator a job uses, so sweep jobs never share RNG state."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA devices too


def set_determinism(enabled: bool, device: torch.device) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # The call imports torch._inductor (~2.5 s), so make it only when the setting changes.
    if enabled != torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(enabled)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = enabled
        torch.backends.cudnn.benchmark = not enabled  # autotuning picks kernels nondeterministically


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The dtype to autocast to, or None for plain fp32."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def use_tf32(setting: Optional[bool], precision: str) -> bool:
    """TF32 rounds fp32 matmul and convolution inputs to 10 mantissa bits on Ampere and later GPUs:
    part of `auto`'s speed, but not what precision=fp32 promises, so there only with trainer.tf32=true."""
    if setting is None:
        return precision == "auto"
    return bool(setting)


def set_tf32(enabled: bool) -> None:
    # Process-wide flags: set both ways, so a sweep's next job never inherits the last job's choice.
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> ContextManager:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_channels_last(setting: str, family: str) -> bool:
    """channels_last (NHWC) for every network with feature maps, on GPUs and CPUs alike; an MLP has none.

    On CPU, oneDNN's NHWC kernels, max pooling above all (4.5x faster than NCHW), made a training step
    1.04x-1.98x faster for every conv preset measured (docs/benchmarks.md, 2-core EPYC, torch 2.14)."""
    setting = str(setting).lower()
    if setting == "auto":
        return family != "mlp"
    return setting == "true"
