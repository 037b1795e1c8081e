"""`trainer.num_threads`: a fixed count, PyTorch's choice (null), or auto: the count for this model here."""
from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn

from cnnlab.models.summary import probe
from cnnlab.parallelism import choose_threads, machine_load, thread_limit, usable_cores

log = logging.getLogger("cnnlab")

# torch's thread count in a fresh process (its cores, or OMP_NUM_THREADS). Every job starts from it, so
# what runs before the model exists (channel statistics, resizing) sums in the same order whether the
# job is a process of its own or a sweep's fourth job after one that chose one thread.
FRESH_PROCESS_THREADS = torch.get_num_threads()


def start_job(setting) -> None:
    """Threads for a job's set-up: a fixed trainer.num_threads at once, else a fresh process's count."""
    torch.set_num_threads(setting if isinstance(setting, int) else FRESH_PROCESS_THREADS)


@torch.no_grad()
def forward_macs(model: nn.Module, shape: tuple, device: torch.device | str = "cpu") -> int:
    """Multiply-accumulates of the convolutions and linear layers in one forward pass of one image:
    the work that threads split. Eval mode, so batch-norm statistics and RNG are left as they were."""
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        if isinstance(module, nn.modules.conv._ConvNd):
            total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    layers = [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    probe(model, layers, count, shape, device)
    return total


def apply_threads(setting, model: nn.Module, shape: tuple, batch_size: int, device: torch.device) -> int:
    """Set torch's intra-op threads from `trainer.num_threads` and return the count in use."""
    if isinstance(setting, int):
        torch.set_num_threads(setting)
    elif setting == "auto" and device.type == "cpu":
        macs = forward_macs(model, shape, device) * batch_size
        cores, limit = usable_cores(), thread_limit()
        most = choose_threads(macs, cores, None, limit)  # the load can only lower it
        threads = choose_threads(macs, cores, machine_load(), limit) if most > 1 else 1
        torch.set_num_threads(threads)
        log.debug(f"cnnlab: {threads} CPU thread(s) for {macs / 1e6:.1f}M multiply-adds per batch")
    return torch.get_num_threads()
