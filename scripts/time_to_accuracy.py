"""Time to accuracy on one machine, in one run: the tutorial recipe's first epoch vs `experiment=fast`.

    python scripts/time_to_accuracy.py --dataset fashion_mnist
    python scripts/time_to_accuracy.py --dataset mnist --data-dir ~/data --repeats 3
    python scripts/time_to_accuracy.py --seeds 0 1 2                     # the floor: the mean over seeds
    python scripts/time_to_accuracy.py --preset fast94 --fast-args device=cuda   # 94% on Fashion-MNIST

tutorial  seed 002's lecture CNN, SGD lr 0.05 momentum 0.9, batch 128, one epoch over all 60,000
          training images through the PyTorch tutorial's DataLoader (PIL -> ToTensor -> Normalize),
          then test accuracy: what a user would write first.
fast      `cnnlab experiment=PRESET dataset=DATASET seed=S` (`--preset`, default fast) for each of
          `--seeds`, the real command in a subprocess, from results.json: training seconds (the
          epochs, not start-up or evaluation) and test accuracy.
The two alternate `--repeats` times (these machines are noisy); medians, the mean test accuracy over
the seeds (each seed's median over the repeats) and the ratio of the preset's median training time
to the tutorial epoch's are printed, with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench import _plain_steps, fresh_model, make_config, tutorial_loader  # noqa: E402
from cnnlab.config import default_data_dir  # noqa: E402
from cnnlab.data import build_data  # noqa: E402
from cnnlab.optim import build_optimizer  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion_mnist", help="a 28x28 dataset: fashion_mnist or mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--preset", default="fast", help="the experiment preset raced against the tutorial")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of the preset, run in turn")
    p.add_argument("--fast-args", nargs="*", default=[], help="extra overrides for the preset's runs")
    return p.parse_args()


def tutorial_epoch(a: argparse.Namespace) -> tuple[float, float]:
    """(training seconds, test accuracy) of one epoch of the tutorial recipe."""
    bench_args = argparse.Namespace(dataset=a.dataset, shape=[1, 28, 28], model="lecture_cnn", optim="momentum",
                                    lr=0.05, batch=128, n=None, device="cpu", precision="fp32",
                                    data_dir=a.data_dir)
    cfg = make_config(bench_args)
    device = torch.device("cpu")
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    data = build_data(cfg.dataset, data_dir, device, torch.Generator().manual_seed(0))
    model = fresh_model(cfg, data, device, channels_last=False)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    loader = tutorial_loader(data, 128, workers=0)
    start = time.perf_counter()
    model.train()
    _plain_steps(model, optimizer, loader, device, None)
    seconds = time.perf_counter() - start
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in data.test:
            correct += int((model(x).argmax(1) == y).sum())
    return seconds, correct / data.test.num_samples


def fast_command(a: argparse.Namespace, seed: int, folder: str) -> list[str]:
    """The preset's real command line; `--fast-args` come last, so they win over the script's own."""
    command = [sys.executable, "-m", "cnnlab", f"experiment={a.preset}", f"dataset={a.dataset}", f"seed={seed}",
               "trainer.progress=false", "trainer.summary=false", "trainer.diagnostics=false",
               f"hydra.run.dir={folder}"]
    if a.data_dir:
        command.append(f"data_dir={a.data_dir}")
    return command + list(a.fast_args)


def fast_run(a: argparse.Namespace, seed: int) -> tuple[float, float]:
    """(training seconds, test accuracy) of `cnnlab experiment=PRESET seed=SEED`."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(fast_command(a, seed, folder), check=True, capture_output=True, text=True)
        results = json.loads((Path(folder) / "results.json").read_text())
    return results["train_seconds"], results["test_acc"]


def seed_summary(by_seed: dict) -> dict:
    """Each seed's median test accuracy over the repeats, and their mean: the floor's figure."""
    per_seed = {seed: statistics.median(accs) for seed, accs in by_seed.items()}
    return {"test_acc_by_seed": {str(s): round(acc, 5) for s, acc in per_seed.items()},
            "mean_test_acc": round(statistics.fmean(per_seed.values()), 5)}


def main() -> None:
    a = parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"tutorial": [], "fast": []}
    by_seed: dict[int, list[float]] = {seed: [] for seed in a.seeds}
    for _ in range(a.repeats):
        runs["tutorial"].append(tutorial_epoch(a))
        for seed in a.seeds:
            runs["fast"].append(fast_run(a, seed))
            by_seed[seed].append(runs["fast"][-1][1])
    print(f"{a.dataset}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")
    summary = {}
    for name, results in runs.items():
        seconds = statistics.median(s for s, _ in results)
        accuracy = statistics.median(acc for _, acc in results)
        summary[name] = {"train_seconds": round(seconds, 1), "test_acc": round(accuracy, 4),
                         "runs": [[round(s, 1), round(acc, 4)] for s, acc in results]}
        shown = ", ".join(f"{s:.1f} s {acc:.2%}" for s, acc in results)
        shown_name = a.preset if name == "fast" else name  # the JSON keeps "fast" for any preset
        print(f"  {shown_name:9s} {seconds:6.1f} s of training, test accuracy {accuracy:.2%}   (runs: {shown})")
    summary["fast"].update(preset=a.preset, seeds=a.seeds, **seed_summary(by_seed),
                           max_train_seconds=round(max(s for s, _ in runs["fast"]), 1))
    print(f"  experiment={a.preset}, seeds {', '.join(map(str, a.seeds))}: mean test accuracy "
          f"{summary['fast']['mean_test_acc']:.3%}, "
          f"training {min(s for s, _ in runs['fast']):.1f}-{summary['fast']['max_train_seconds']:.1f} s")
    ratio = summary["fast"]["train_seconds"] / summary["tutorial"]["train_seconds"]
    print(f"  {a.preset} / tutorial training time: {ratio:.2f}")
    print(json.dumps({"dataset": a.dataset, **summary, "time_ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
