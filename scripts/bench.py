"""Training throughput of cnnlab's loop against the loops users would otherwise write, in one process.

    python scripts/bench.py --dataset fashion_mnist --model lecture_cnn --batch 128 --device cpu
    python scripts/bench.py --dataset synthetic --shape 3 32 32 --model resnet18 --batch 512 --device cuda

loops (same model, same initial weights, same data, same batch size):
  cnnlab    cnnlab's own training epoch (device-resident uint8 data, on-device batches)
  tutorial  the PyTorch tutorial recipe: uint8 arrays -> PIL -> ToTensor/Normalize in a DataLoader
  compute   the same steps on float batches already in memory: the compute-only limit
Each loop runs `--rounds` times in rotation (machines are noisy) and the median is reported, with
the ratios cnnlab/compute and cnnlab/tutorial. Prints a table and one JSON line.

    python scripts/bench.py --threads --dataset digits --model mlp5x100 --n 1000 --rounds 5

--threads: cnnlab's loop on 1 thread, on every core, and on trainer.num_threads=auto's choice for
this model and machine, in rotation; first on the machine as it is ("idle"), then with a competing
process that this script starts (`--compete` busy-looping processes, default 1: another program
holding one core). Prints each setting's images/s and how much slower auto's choice is than the
best setting (floor: 1.2x on a busy 2-core machine).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnlab.config import RootConfig  # noqa: E402
from cnnlab.data import build_data  # noqa: E402
from cnnlab.models import build_model  # noqa: E402
from cnnlab.optim import build_optimizer, build_schedule  # noqa: E402
from cnnlab.train.loop import FitContext, FitState, train_epoch  # noqa: E402
from cnnlab.train.objective import Objective  # noqa: E402
from cnnlab.train.runtime import autocast_dtype, pick_device, use_channels_last  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--shape", type=int, nargs=3, default=[3, 32, 32], help="synthetic only: C H W")
    p.add_argument("--model", default="lecture_cnn", help="a preset in conf/model/")
    p.add_argument("--optim", default="momentum", help="a preset in conf/optim/")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n", type=int, default=None, help="training images per epoch (default: all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=0, help="tutorial DataLoader workers")
    p.add_argument("--loops", default="cnnlab,tutorial,compute")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", action="store_true", help="auto's thread choice against 1 and all cores")
    p.add_argument("--compete", type=int, default=1, help="--threads: busy processes in the second half")
    return p.parse_args()


def make_config(a: argparse.Namespace) -> RootConfig:
    """The run's config as `cnnlab` composes it (the presets name their family's schema in Hydra's
    defaults list, so the YAML files cannot simply be merged onto the dataclasses)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import cnnlab.cli  # noqa: F401 - registers the schemas the presets name
    from cnnlab.config import validate

    overrides = [f"dataset={a.dataset}", f"model={a.model}", f"optim={a.optim}", f"optim.lr={a.lr}",
                 f"dataset.batch_size={a.batch}", "dataset.val_split=0", f"device={a.device}",
                 # all of train for training; these loops never validate or choose
                 "dataset.val_from_test=true", "trainer.progress=false", f"trainer.precision={a.precision}",
                 "trainer.max_epochs=1"]
    if a.dataset == "synthetic":  # the keys only the synthetic source reads
        overrides += [f"dataset.shape=[{','.join(map(str, a.shape))}]", f"dataset.num_samples={a.n or 10000}"]
    elif a.n:
        overrides.append(f"dataset.train_size={a.n}")
    if a.data_dir:
        overrides.append(f"data_dir={a.data_dir}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        return validate(compose(config_name="config", overrides=overrides))


class _NullWriter:
    def add_scalar(self, *args, **kwargs):
        pass


def fresh_model(cfg: RootConfig, data, device, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(cfg.model, data.shape, data.num_classes).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_cnnlab(cfg, data, device, channels_last) -> float:
    model = fresh_model(cfg, data, device, channels_last)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    ctx = FitContext(cfg=cfg, model=model, raw_model=model, data=data, optimizer=optimizer,
                     schedule=build_schedule(cfg.sched, optimizer, 1, len(data.train)),
                     objective=Objective(cfg.loss, model), device=device,
                     amp_dtype=autocast_dtype(cfg.trainer.precision, device), scaler=None,
                     writer=_NullWriter(), run_dir=Path("."), make_checkpoint=lambda *a: {})
    sync(device)
    start = time.perf_counter()
    train_epoch(ctx, FitState(), 1)
    sync(device)
    return data.train.num_samples / (time.perf_counter() - start)


def _plain_steps(model, optimizer, batches, device, amp_dtype) -> None:
    from cnnlab.train.runtime import autocast

    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def tutorial_loader(data, batch: int, workers: int):
    """What the PyTorch tutorials do: per-image PIL conversion and transforms in a DataLoader."""
    import numpy as np
    import torchvision.transforms as T
    from PIL import Image

    x = data.train.x.cpu()
    images = x[:, 0].numpy() if x.shape[1] == 1 else x.permute(0, 2, 3, 1).numpy()
    labels = data.train.y.cpu().numpy()
    transform = T.Compose([T.ToTensor(), T.Normalize(data.mean, data.std)])

    class ArrayDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return transform(Image.fromarray(np.ascontiguousarray(images[i]))), int(labels[i])

    return torch.utils.data.DataLoader(ArrayDataset(), batch_size=batch, shuffle=True, num_workers=workers,
                                       pin_memory=data.train.x.is_cuda)


def run_tutorial(cfg, data, device, channels_last, workers) -> float:
    model = fresh_model(cfg, data, device, channels_last=False)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    loader = tutorial_loader(data, cfg.dataset.batch_size, workers)
    sync(device)
    start = time.perf_counter()
    _plain_steps(model, optimizer, loader, device, None)
    sync(device)
    return len(loader.dataset) / (time.perf_counter() - start)


def run_compute(cfg, data, device, channels_last) -> float:
    model = fresh_model(cfg, data, device, channels_last)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    batches = [(x.clone(), y.clone()) for x, y in data.train]  # materialised before the clock starts
    sync(device)
    start = time.perf_counter()
    _plain_steps(model, optimizer, batches, device, autocast_dtype(cfg.trainer.precision, device))
    sync(device)
    return sum(len(y) for _, y in batches) / (time.perf_counter() - start)


def _competitors(count: int) -> list:
    import subprocess

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def thread_choice(a, cfg, data, device, channels_last) -> None:
    """auto's thread count against 1 and every core, idle and beside competing processes."""
    from cnnlab.parallelism import choose_threads, machine_load, thread_limit, usable_cores
    from cnnlab.train.threads import forward_macs

    cores = usable_cores()
    macs = forward_macs(fresh_model(cfg, data, device, channels_last), data.shape, device) * a.batch
    report = {"model": a.model, "dataset": a.dataset, "batch": a.batch, "cores": cores,
              "macs_per_batch": macs, "conditions": {}}
    print(f"{a.model} on {a.dataset} {'x'.join(map(str, data.shape))}, batch {a.batch}, "
          f"{macs / 1e6:.1f}M multiply-adds per batch forward, {cores} usable cores, torch {torch.__version__}")
    for condition in ("idle", "busy"):
        others = _competitors(a.compete) if condition == "busy" else []
        try:
            if others:
                time.sleep(1.0)  # let them take their cores
            load = machine_load()
            auto = choose_threads(macs, cores, load, thread_limit())
            settings = sorted({1, cores, auto})
            speeds = {t: [] for t in settings}
            for _ in range(a.rounds):
                for t in settings:
                    torch.set_num_threads(t)
                    speeds[t].append(run_cnnlab(cfg, data, device, channels_last))
        finally:
            for process in others:
                process.kill()
                process.wait()
        median = {t: statistics.median(v) for t, v in speeds.items()}
        best = max(median.values())
        slower = best / median[auto]
        label = (f"busy ({len(others)} competing process{'es' if len(others) != 1 else ''})" if others
                 else "idle" if not load else "idle? (not quite: the machine has other work)")
        print(f"  {label}: other runnable threads {load}, auto chose {auto}")
        for t in settings:
            runs = ", ".join(f"{v:,.0f}" for v in speeds[t])
            print(f"    {t:2d} thread{'s' if t > 1 else ' '} {median[t]:>10,.0f} images/s   (rounds: {runs})")
        print(f"    auto's choice is {slower:.2f}x slower than the best setting (floor 1.2)")
        report["conditions"][condition] = {"load": load, "auto": auto, "slower_than_best": round(slower, 3),
                                           "images_per_s": {str(t): round(v, 1) for t, v in median.items()}}
    print(json.dumps(report))


def main() -> None:
    a = parse_args()
    cfg = make_config(a)
    device = pick_device(cfg.device)
    torch.backends.cudnn.benchmark = True
    channels_last = use_channels_last(cfg.trainer.channels_last, cfg.model.family)
    from cnnlab.config import default_data_dir

    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    data = build_data(cfg.dataset, data_dir, device, torch.Generator(device=device).manual_seed(0), channels_last)
    if a.threads:
        return thread_choice(a, cfg, data, device, channels_last)
    runners = {"cnnlab": lambda: run_cnnlab(cfg, data, device, channels_last),
               "tutorial": lambda: run_tutorial(cfg, data, device, channels_last, a.workers),
               "compute": lambda: run_compute(cfg, data, device, channels_last)}
    loops = a.loops.split(",")
    speeds = {name: [] for name in loops}
    for _ in range(a.rounds):
        for name in loops:
            speeds[name].append(runners[name]())
    median = {name: statistics.median(v) for name, v in speeds.items()}
    print(f"{a.model} on {a.dataset} {'x'.join(map(str, data.shape))}, batch {a.batch}, "
          f"{data.train.num_samples} images/epoch, {device}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    for name in loops:
        runs = ", ".join(f"{v:,.0f}" for v in speeds[name])
        print(f"  {name:9s} {median[name]:>10,.0f} images/s   (rounds: {runs})")
    ratios = {}
    for other in ("compute", "tutorial"):
        if "cnnlab" in median and other in median:
            ratios[f"cnnlab/{other}"] = round(median["cnnlab"] / median[other], 3)
            print(f"  cnnlab / {other}: {ratios[f'cnnlab/{other}']:.3f}")
    print(json.dumps({"model": a.model, "dataset": a.dataset, "batch": a.batch, "device": str(device),
                      "images_per_s": {k: round(v, 1) for k, v in median.items()}, "ratios": ratios}))


if __name__ == "__main__":
    main()
