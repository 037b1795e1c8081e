"""Evaluation and training images/s with freed memory kept (trainer.keep_freed_memory) or handed back.

    python scripts/bench_memory.py                                    # report_cnn at 1x128x128, 1 thread
    python scripts/bench_memory.py --model fast_cnn --shape 1 28 28 --batch 128 --threads 2

The setting is process-wide (glibc's malloc thresholds), so each way runs in a process of its own,
the two alternating `--rounds` times. Each process builds the preset's model in channels_last (as
cnnlab trains it), times `--eval-images` random images through it without gradients in batches of
`--eval-batch` (cnnlab's evaluation batch: 4x the training batch, at least 256), then `--steps`
Adam steps at `--batch`. Prints each round, the medians and their ratio, and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="report_cnn", help="a preset in conf/model/")
    p.add_argument("--shape", type=int, nargs=3, default=[1, 128, 128], help="C H W")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--eval-images", type=int, default=1024)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", choices=["kept", "released"], help=argparse.SUPPRESS)
    return p.parse_args()


def measure(a: argparse.Namespace) -> dict:
    """One process's figures: the setting first, then torch's work."""
    sys.path.insert(0, str(SRC))
    from cnnlab.train.memory import keep_freed_memory

    kept = keep_freed_memory(a.child == "kept")
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import make_config  # the preset composed as cnnlab composes it
    from cnnlab.models import build_model

    torch.set_num_threads(a.threads)
    cfg = make_config(argparse.Namespace(dataset="synthetic", shape=a.shape, model=a.model, optim="adam",
                                         lr=0.001, batch=a.batch, n=None, device="cpu", precision="fp32",
                                         data_dir=None))
    torch.manual_seed(0)
    model = build_model(cfg.model, tuple(a.shape), a.classes).to(memory_format=torch.channels_last)
    images = torch.randn(a.eval_images, *a.shape).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, a.classes, (a.eval_images,))

    def evaluate() -> None:
        with torch.no_grad():
            for i in range(0, a.eval_images, a.eval_batch):
                model(images[i:i + a.eval_batch])

    model.eval()
    evaluate()  # warm-up: oneDNN's kernels, the first allocations
    start = time.perf_counter()
    evaluate()
    eval_rate = a.eval_images / (time.perf_counter() - start)

    model.train()
    optimizer = torch.optim.Adam(model.parameters())
    x, y = images[:a.batch], labels[:a.batch]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    return {"kept": kept, "eval_img_s": eval_rate, "train_img_s": a.steps * a.batch / (time.perf_counter() - start)}


def main() -> None:
    a = parse_args()
    if a.child:
        print(json.dumps(measure(a)))
        return
    args = [f"--model={a.model}", "--shape", *map(str, a.shape), f"--classes={a.classes}", f"--batch={a.batch}",
            f"--eval-batch={a.eval_batch}", f"--eval-images={a.eval_images}", f"--steps={a.steps}",
            f"--threads={a.threads}"]
    runs = {"kept": [], "released": []}
    for r in range(a.rounds):
        for way in ("kept", "released") if r % 2 == 0 else ("released", "kept"):
            out = subprocess.run([sys.executable, __file__, *args, f"--child={way}"], check=True,
                                 capture_output=True, text=True).stdout
            runs[way].append(json.loads(out.strip().splitlines()[-1]))
            print(f"  round {r} {way:8s} eval {runs[way][-1]['eval_img_s']:7.1f} img/s   "
                  f"train {runs[way][-1]['train_img_s']:6.1f} img/s")
    if not runs["kept"][0]["kept"]:
        print("  (this platform has no glibc malloc thresholds: both ways are the same)")
    med = {way: {k: statistics.median(r[k] for r in rs) for k in ("eval_img_s", "train_img_s")}
           for way, rs in runs.items()}
    ratios = {k: med["kept"][k] / med["released"][k] for k in ("eval_img_s", "train_img_s")}
    print(f"  {a.model} {'x'.join(map(str, a.shape))}, {a.threads} thread(s), {platform.machine()}: "
          f"eval {med['released']['eval_img_s']:.0f} -> {med['kept']['eval_img_s']:.0f} img/s "
          f"({ratios['eval_img_s']:.2f}x), training {med['released']['train_img_s']:.0f} -> "
          f"{med['kept']['train_img_s']:.0f} img/s ({ratios['train_img_s']:.2f}x)")
    print(json.dumps({"model": a.model, "shape": a.shape, "threads": a.threads, "batch": a.batch,
                      "eval_batch": a.eval_batch, "medians": med, "ratios": ratios, "runs": runs}))


if __name__ == "__main__":
    main()
