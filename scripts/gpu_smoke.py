"""The CUDA paths end to end, each a real two-epoch cnnlab run: a smoke test, not a benchmark.

    python scripts/gpu_smoke.py                 # on a GPU machine (scripts/gpu_checks.sh runs it)
    python scripts/gpu_smoke.py --device cpu    # the same runs on a CPU, to rehearse

Each check is `python -m cnnlab ...` in a subprocess with its own time limit, ResNet-18 on random
32x32x3 images (dataset=synthetic) unless it says otherwise; it passes if the run completes with a
finite training and test loss. Before them, the optimizers cnnlab builds for parameters on the
device are checked for PyTorch's fused kernels (src/cnnlab/optim.py). Prints a table and one JSON
line; exits 1 if any check failed.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

RESNET = ["dataset=synthetic", "dataset.val_split=0.1", "model=resnet18"]
CHECKS = {  # name: (overrides, seconds allowed)
    "bf16 autocast, fused Adam, channels_last": (RESNET + ["trainer.precision=bf16", "optim=adam",
                                                            "trainer.channels_last=true"], 40),
    "fp16 autocast + gradient scaler, fused SGD, no channels_last": (
        RESNET + ["trainer.precision=fp16", "optim=momentum", "trainer.channels_last=false"], 40),
    "torch.compile, bf16": (RESNET + ["trainer.precision=bf16", "optim=adam", "trainer.compile=true"], 100),
    "fp32, TF32 off": (RESNET + ["trainer.precision=fp32", "trainer.tf32=false", "optim=sgd"], 40),
    "the README's default command": ([], 20),
}  # 240 s in all: scripts/gpu_checks.sh gives this script 250


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--samples", type=int, default=16384, help="dataset.num_samples of the ResNet-18 checks")
    p.add_argument("--only", nargs="*", default=None, help="names of checks to run (default: all)")
    p.add_argument("--limit-scale", type=float, default=1.0, help="multiply each check's time limit (a CPU needs more)")
    return p.parse_args()


def fused_optimizers(device: str) -> dict:
    """optim name -> whether cnnlab's optimizer for parameters on `device` uses a fused kernel."""
    import torch

    from cnnlab.optim import build_optimizer
    from cnnlab.registry import make_config

    params = [torch.nn.Parameter(torch.zeros(4, device=device))]
    return {name: bool(build_optimizer(make_config("optim", {"name": name, "lr": 0.1}), params).defaults.get("fused"))
            for name in ("sgd", "momentum", "adam", "adamw")}


def run_check(overrides: list, limit: float, device: str, samples: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "cnnlab", f"device={device}", "trainer.max_epochs=2", "trainer.progress=false",
                   "trainer.summary=false", f"hydra.run.dir={folder}", *overrides]
        if "dataset=synthetic" in overrides:
            command.append(f"dataset.num_samples={samples}")
        start = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return {"passed": False, "error": f"no result within {limit:.0f} s"}
        wall = time.perf_counter() - start
        path = Path(folder) / "results.json"
        if done.returncode or not path.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"passed": False, "exit_code": done.returncode, "error": " | ".join(tail)}
        r = json.loads(path.read_text())
    losses = [r.get("final_train_loss"), r.get("test_loss")]
    finite = all(v is not None and math.isfinite(v) for v in losses)
    return {"passed": r.get("status") == "completed" and finite, "test_acc": r.get("test_acc"),
            "final_train_loss": r.get("final_train_loss"), "train_seconds": r.get("train_seconds"),
            "images_per_s": r.get("images_per_s"), "startup_seconds": r.get("startup_seconds"),
            "wall_seconds": round(wall, 1)}


def main() -> None:
    a = parse_args()
    import torch

    name = torch.cuda.get_device_name() if a.device.startswith("cuda") and torch.cuda.is_available() else a.device
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    fused = fused_optimizers(a.device)
    print("  fused kernels: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in fused.items()))
    results = {}
    for check, (overrides, limit) in CHECKS.items():
        if a.only and check not in a.only:
            continue
        if "fp16" in check and not a.device.startswith("cuda"):
            print(f"  skip  {check}: a CPU has no fast fp16 convolutions (a 2-epoch run takes over 8 minutes)")
            continue
        results[check] = result = run_check(overrides, limit * a.limit_scale, a.device, a.samples)
        print(f"  {'pass' if result['passed'] else 'FAIL'}  {check}: {_figures(result)}", flush=True)
        print(json.dumps({"check": check, **result}), flush=True)  # each kept, should a later check hang
    passed = bool(results) and all(r["passed"] for r in results.values())  # --only naming nothing fails
    print(json.dumps({"device": name, "torch": torch.__version__, "fused": fused, "checks": results,
                      "passed": passed}))
    sys.exit(0 if passed else 1)


def _figures(result: dict) -> str:
    if "error" in result:
        return result["error"]
    shown = [f"test acc {result['test_acc']:.2%}" if result.get("test_acc") is not None else "no test accuracy",
             f"{result['images_per_s']:,.0f} img/s" if result.get("images_per_s") else None,
             f"{result['train_seconds']:.1f} s of training" if result.get("train_seconds") is not None else None,
             f"{result['wall_seconds']:.1f} s in all"]
    return ", ".join(part for part in shown if part)


if __name__ == "__main__":
    main()
