"""Start-up of the default run, from the command to the first training step, beside `import torch`,
and its exit: from its last line of output to the end of the process.

    python scripts/startup.py
    python scripts/startup.py --repeats 7 -- dataset=fashion_mnist

Runs the real `cnnlab` command (`python -m cnnlab`, plus any overrides after `--`) `--repeats` times
after one warm-up run, and reads `startup_seconds` from each run's results.json. Between runs it
times `import torch` in a bare interpreter: on a shared machine that import swings by a second, and
the rest of cnnlab's start-up is the difference. The exit is what the user waits for after the
result is printed (the interpreter's teardown). Prints the runs, their medians and one JSON line.

The runs get Python's bytecode cache, as an installed cnnlab has it: torch's modules are compiled
when pip installs them, cnnlab's (an editable install) at their first import. Where the environment
sets PYTHONDONTWRITEBYTECODE (some CI images and this project's build machines do), it is removed for
the runs, else cnnlab's modules would be compiled at every start while torch's are not, ~0.05 s that
no user pays; `--no-bytecode-cache` keeps the environment's setting.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="keep PYTHONDONTWRITEBYTECODE if the environment sets it (default: removed for the runs)")
    p.add_argument("overrides", nargs="*", help="cnnlab overrides (after --)")
    return p.parse_args()


def run_environment(bytecode_cache: bool) -> dict:
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cnnlab_startup(overrides: list[str], folder: Path, env: dict) -> tuple[float, float]:
    """(start-up, exit) seconds of one run of the real command."""
    # the real default, train_batch.png included (it is drawn beside the first epoch); the figures after
    # training only lengthen each run
    command = [sys.executable, "-m", "cnnlab", *overrides, f"hydra.run.dir={folder}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    last_line = time.perf_counter()
    for _ in process.stdout:
        last_line = time.perf_counter()
    if process.wait():
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
    exit_seconds = time.perf_counter() - last_line
    return json.loads((folder / "results.json").read_text())["startup_seconds"], exit_seconds


def torch_import_seconds(env: dict) -> float:
    # timed inside the process: interpreter start-up and torch's teardown at exit are not start-up
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return float(out.stdout)


def main() -> None:
    a = parse_args()
    env = run_environment(bytecode_cache=not a.no_bytecode_cache)
    cached = not env.get("PYTHONDONTWRITEBYTECODE")
    print(f"  bytecode cache {'on' if cached else 'off (PYTHONDONTWRITEBYTECODE)'}")
    with tempfile.TemporaryDirectory() as tmp:
        cnnlab_startup(a.overrides, Path(tmp) / "warm-up", env)  # fills the file cache and .pyc files
        runs = []
        for k in range(a.repeats):
            runs.append((*cnnlab_startup(a.overrides, Path(tmp) / f"run{k}", env), torch_import_seconds(env)))
    for k, (startup, leave, torch_import) in enumerate(runs):
        print(f"  run {k}: start-up {startup:.2f} s   import torch {torch_import:.2f} s   exit {leave:.2f} s")
    startup = statistics.median(s for s, _, _ in runs)
    leave = statistics.median(e for _, e, _ in runs)
    torch_import = statistics.median(t for _, _, t in runs)
    print(f"  median: start-up {startup:.2f} s, import torch {torch_import:.2f} s, "
          f"the rest {startup - torch_import:.2f} s; exit {leave:.2f} s after the last line")
    print(json.dumps({"overrides": a.overrides, "bytecode_cache": cached, "startup_seconds": [s for s, _, _ in runs],
                      "import_torch_seconds": [round(t, 3) for _, _, t in runs],
                      "exit_seconds": [round(e, 3) for _, e, _ in runs],
                      "median_startup": startup, "median_import_torch": round(torch_import, 3),
                      "median_exit": round(leave, 3)}))


if __name__ == "__main__":
    main()
