"""Start-up of the default run, from the command to the first training step, beside `import torch`.

    python scripts/startup.py
    python scripts/startup.py --repeats 7 -- dataset=fashion_mnist

Runs the real `cnnlab` command (`python -m cnnlab`, plus any overrides after `--`) `--repeats` times
after one warm-up run, and reads `startup_seconds` from each run's results.json. Between runs it
times `import torch` in a bare interpreter: on a shared machine that import swings by a second, and
the rest of cnnlab's start-up is the difference. Prints the runs, their medians and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("overrides", nargs="*", help="cnnlab overrides (after --)")
    return p.parse_args()


def cnnlab_startup(overrides: list[str], folder: Path) -> float:
    # the real default, train_batch.png included (it is drawn beside the first epoch); the figures after
    # training only lengthen each run
    command = [sys.executable, "-m", "cnnlab", *overrides, f"hydra.run.dir={folder}"]
    subprocess.run(command, check=True, capture_output=True)
    return json.loads((folder / "results.json").read_text())["startup_seconds"]


def torch_import_seconds() -> float:
    # timed inside the process: interpreter start-up and torch's teardown at exit are not start-up
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout)


def main() -> None:
    a = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cnnlab_startup(a.overrides, Path(tmp) / "warm-up")  # fills the file cache and .pyc files
        runs = []
        for k in range(a.repeats):
            runs.append((cnnlab_startup(a.overrides, Path(tmp) / f"run{k}"), torch_import_seconds()))
    for k, (startup, torch_import) in enumerate(runs):
        print(f"  run {k}: start-up {startup:.2f} s   import torch {torch_import:.2f} s")
    startup = statistics.median(s for s, _ in runs)
    torch_import = statistics.median(t for _, t in runs)
    print(f"  median: start-up {startup:.2f} s, import torch {torch_import:.2f} s, "
          f"the rest {startup - torch_import:.2f} s")
    print(json.dumps({"overrides": a.overrides, "startup_seconds": [s for s, _ in runs],
                      "import_torch_seconds": [round(t, 3) for _, t in runs],
                      "median_startup": startup, "median_import_torch": round(torch_import, 3)}))


if __name__ == "__main__":
    main()
