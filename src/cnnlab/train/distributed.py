"""Multi-GPU and multi-node training: torchrun + DistributedDataParallel.

    torchrun --nproc_per_node=4 -m cnnlab model=resnet18 dataset=cifar10            # 4 GPUs, one machine
    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --master_addr=HOST --master_port=29500 \
        -m cnnlab model=resnet18 dataset=cifar10 hydra.run.dir=/shared/runs/r18     # node 0 of 2 (node 1: --node_rank=1)

torchrun starts one process per device and sets WORLD_SIZE, RANK and LOCAL_RANK; without them this
module does nothing and imports nothing. With them:

- the process group starts before Hydra (gloo for CPU tensors, NCCL for CUDA ones), so rank 0 can
  claim the run folder and hand it to the others: one folder, one `.hydra/`, one train.log;
- every rank draws the same permutation each epoch (seeded by seed and epoch) and takes its slice of
  each global batch of `dataset.batch_size` images, so a step sees the same images as a single-process
  run with that batch, and the gradient DDP averages is that batch's;
- epoch metrics are summed over ranks; validation and test run whole on every rank (they are small);
- only rank 0 prints, logs to TensorBoard and writes checkpoints and results.json.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

log = logging.getLogger("cnnlab")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    return world_size() > 1


def hydra_overrides() -> list[str]:
    """Extra overrides for ranks other than 0: no `.hydra/` copy and no train.log of their own."""
    if not active() or rank() == 0:
        return []
    return ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


def init() -> None:
    if not active():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")


def shutdown() -> None:
    if not active():
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def share_from_rank0(make: Callable[[], object]) -> object:
    """`make()` on rank 0, its result on every rank (the run folder)."""
    if not active():
        return make()
    import torch.distributed as dist

    init()
    box = [make() if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class Distributed:
    """What run_job and the loop ask of DDP; None of it exists in a single-process run."""

    def __init__(self, device):
        import torch

        self.rank, self.world = rank(), world_size()
        self.device = torch.device("cuda", local_rank()) if device.type == "cuda" else device
        if self.rank != 0:
            log.setLevel(logging.WARNING)  # only rank 0 prints

    def shard(self, data, batch_size: int, seed: int, generator) -> None:
        """This rank's slice of every global batch; its own augmentation and dropout draws."""
        import torch

        from cnnlab.errors import ConfigError

        if batch_size % self.world:
            raise ConfigError(f"dataset.batch_size={batch_size} is the global batch and must divide evenly "
                              f"across the {self.world} processes (per-process batch = batch_size / "
                              f"{self.world}).")
        data.train.shard(self.rank, self.world)
        generator.manual_seed(seed + 1_000_003 * self.rank)  # the permutation keeps its own seed
        torch.manual_seed(seed + 1_000_003 * self.rank)

    def wrap(self, model):
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def reduce_flags(self, flags):
        import torch.distributed as dist

        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return flags

    def sync_metrics(self, tally, step_losses) -> None:
        """Sum the epoch's loss and accuracy counts over ranks; average the per-step losses."""
        import torch
        import torch.distributed as dist

        parts = [tally.loss_sum, tally.correct.double(),
                 (tally.correct5 if tally.correct5 is not None else tally.correct).double(),
                 torch.tensor(float(tally.count), dtype=torch.float64, device=tally.loss_sum.device)]
        packed = torch.stack(parts)
        dist.all_reduce(packed)
        tally.loss_sum.copy_(packed[0])
        tally.correct.copy_(packed[1].round().long())
        if tally.correct5 is not None:
            tally.correct5.copy_(packed[2].round().long())
        tally.count = int(packed[3].item())
        dist.all_reduce(step_losses)
        step_losses /= self.world


def setup(device) -> Optional[Distributed]:
    if not active():
        return None
    init()
    return Distributed(device)


class NullWriter:
    """TensorBoard on ranks other than 0: accepts every call, writes nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
