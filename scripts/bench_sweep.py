"""Wall time of a preset sweep the old way and the new way, alternating, each in its own process.

    python scripts/bench_sweep.py                                   # optimizers and overfitting
    python scripts/bench_sweep.py --presets optimizers --rounds 3
    python scripts/bench_sweep.py --presets overfitting --extra trainer.max_epochs=2   # a quick check

old   `cnnlab -m experiment=NAME hydra/launcher=basic trainer.num_threads=null trainer.checkpoint_every_s=0
      trainer.keep_freed_memory=false`: as before the speed work, one job after another in one process,
      each on PyTorch's default thread count, writing best.pt and last.pt at every epoch end, its
      large buffers handed back to the OS at every free
new   `cnnlab -m experiment=NAME`: the preset's launcher (hydra/launcher=auto, one single-thread
      worker process per core), trainer.num_threads=auto, checkpoints every 10 s (trainer.checkpoint_every_s)
      and freed memory kept for the next batch (trainer.keep_freed_memory)
Both share this version's other changes (one compose per distinct override before the sweep, the
diagnostics figures drawn once), so the ratio understates the gain over the older code.
Each sweep is the real command in a subprocess, timed from start to exit. Then every job of both
must have written a complete run folder (results.json completed, best.pt and last.pt, .hydra/, one
TensorBoard file, train.log), and the two must agree job by job on every metric of results.json
and its per-epoch history. The same seed on a different thread count sums in a different order, so
the old way (2 threads) and the new (1 thread) differ in the last bits and, over many epochs, a
little more: they are compared with `--tolerance` (absolute, on accuracies and losses) and the
largest difference is printed. `--old-threads 1` makes both single-thread: then they must agree to
float rounding (tolerance 1e-6), which checks that running in parallel changes nothing.
Prints a table and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = ("test_acc", "test_loss", "best_val_acc", "best_val_loss", "best_epoch", "epochs",
           "final_train_acc", "final_train_loss", "final_val_acc", "final_val_loss")
HISTORY = ("train/loss", "train/acc", "val/loss", "val/acc")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["optimizers", "overfitting"])
    p.add_argument("--rounds", type=int, default=1, help="old/new pairs per preset, alternating")
    p.add_argument("--extra", nargs="*", default=[], help="overrides for both, e.g. trainer.max_epochs=2")
    p.add_argument("--old-threads", default="null", help="trainer.num_threads of the old way (null: PyTorch's)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest absolute metric difference allowed (default 0.02, or 1e-6 with --old-threads 1)")
    p.add_argument("--keep", default=None, help="keep the sweep folders under this folder")
    return p.parse_args()


def sweep_command(preset: str, way: str, folder: Path, extra: list[str], old_threads: str) -> list[str]:
    command = [sys.executable, "-m", "cnnlab", "-m", f"experiment={preset}", f"hydra.sweep.dir={folder}", *extra]
    if way == "old":
        command += ["hydra/launcher=basic", f"trainer.num_threads={old_threads}", "trainer.checkpoint_every_s=0",
                    "trainer.keep_freed_memory=false"]
    return command


def run_sweep(command: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds


def job_problems(job: Path) -> list[str]:
    """What a finished job's folder lacks; empty when complete."""
    problems = []
    results = job / "results.json"
    if not results.is_file():
        return [f"{job.name}: no results.json"]
    if json.loads(results.read_text()).get("status") != "completed":
        problems.append(f"{job.name}: status is not completed")
    for part in ("checkpoints/best.pt", "checkpoints/last.pt", ".hydra/config.yaml", "train.log"):
        if not (job / part).is_file():
            problems.append(f"{job.name}: no {part}")
    if len(list(job.glob("events.out.tfevents.*"))) != 1:
        problems.append(f"{job.name}: not exactly one TensorBoard file")
    return problems


def jobs(sweep: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(sweep.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def metric_differences(a: dict, b: dict) -> dict[str, float]:
    """Absolute difference of each metric, and of each epoch's history entry (`history.3.val/acc`)."""
    diffs = {}
    for key in METRICS:
        va, vb = a.get(key), b.get(key)
        if va is None and vb is None:
            continue
        diffs[key] = float("inf") if va is None or vb is None else abs(float(va) - float(vb))
    history_a, history_b = a.get("history", []), b.get("history", [])
    if len(history_a) != len(history_b):
        diffs["history.length"] = float("inf")
    for i, (ra, rb) in enumerate(zip(history_a, history_b)):
        for key in HISTORY:
            diffs[f"history.{i + 1}.{key}"] = abs(ra[key] - rb[key])
    return diffs


def compare_sweeps(old: Path, new: Path, tolerance: float) -> tuple[list[str], float]:
    """(problems, the largest metric difference) between two runs of the same sweep."""
    old_jobs, new_jobs = jobs(old), jobs(new)
    problems = [p for folder in (*old_jobs.values(), *new_jobs.values()) for p in job_problems(folder)]
    if set(old_jobs) != set(new_jobs):
        problems.append(f"different jobs: {sorted(set(old_jobs) ^ set(new_jobs))}")
    largest = 0.0
    for name in sorted(set(old_jobs) & set(new_jobs)):
        try:
            a = json.loads((old_jobs[name] / "results.json").read_text())
            b = json.loads((new_jobs[name] / "results.json").read_text())
        except (OSError, ValueError):
            continue  # already reported by job_problems
        for key, diff in metric_differences(a, b).items():
            largest = max(largest, diff)
            if diff > tolerance:
                problems.append(f"{name}: {key} differs by {diff:.3g} (> {tolerance:g})")
    return problems, largest


def by_job(problems: list[str]) -> list[str]:
    """One line per job: its first problem and how many more it has."""
    first: dict[str, list[str]] = {}
    for problem in problems:
        first.setdefault(problem.split(":", 1)[0], []).append(problem)
    return [found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else "") for found in first.values()]


def differences_hint(old_threads: str, problems: list[str]) -> str | None:
    """What differing metrics mean when the old way ran on more threads than the new way's one
    (`problems` as compare_sweeps gives them; a missing file is no thread effect)."""
    if old_threads == "1" or not any("differs by" in p for p in problems):
        return None
    threads = "PyTorch's default threads" if old_threads == "null" else f"trainer.num_threads={old_threads}"
    return (f"    these jobs differ because the old way summed on {threads} and the new way on one "
            "(another order of float additions, which some optimizers amplify over epochs); "
            "`--old-threads 1` runs both on one thread, where every job must match to float rounding.")


def seconds_in_jobs(sweep: Path) -> dict[str, float]:
    """Sums over the sweep's jobs: training (the epochs) and each job's wall time inside its process."""
    totals = {"train_seconds": 0.0, "wall_seconds": 0.0}
    for job in jobs(sweep).values():
        try:
            results = json.loads((job / "results.json").read_text())
        except (OSError, ValueError):
            continue
        for key in totals:
            totals[key] += results.get(key) or 0.0
    return {k: round(v, 1) for k, v in totals.items()}


def main() -> None:
    a = parse_args()
    tolerance = a.tolerance if a.tolerance is not None else (1e-6 if a.old_threads == "1" else 0.02)
    keep = Path(a.keep) if a.keep else None
    summary, failed = {}, False
    with tempfile.TemporaryDirectory() as scratch:
        root = keep or Path(scratch)
        for preset in a.presets:
            times = {"old": [], "new": []}
            folders = {}
            for r in range(a.rounds):
                for way in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    folder = root / f"{preset}-{way}-{r}"
                    times[way].append(run_sweep(sweep_command(preset, way, folder, a.extra, a.old_threads)))
                    folders.setdefault(way, folder)
            problems, largest = compare_sweeps(folders["old"], folders["new"], tolerance)
            old, new = statistics.median(times["old"]), statistics.median(times["new"])
            summary[preset] = {"old_s": round(old, 1), "new_s": round(new, 1), "ratio": round(old / new, 2),
                               "jobs": len(jobs(folders["new"])), "largest_difference": largest,
                               "problems": by_job(problems), "old_runs": [round(t, 1) for t in times["old"]],
                               "new_runs": [round(t, 1) for t in times["new"]],
                               "old_in_jobs": seconds_in_jobs(folders["old"]),
                               "new_in_jobs": seconds_in_jobs(folders["new"])}
            failed |= bool(problems)
    print(f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), load {os.getloadavg()[0]:.1f}, "
          f"{platform.processor() or platform.machine()}, extra overrides: {' '.join(a.extra) or 'none'}")
    for preset, s in summary.items():
        print(f"  {preset:14s} {s['jobs']:3d} jobs   old {s['old_s']:7.1f} s   new {s['new_s']:7.1f} s   "
              f"ratio {s['ratio']:.2f}   largest metric difference {s['largest_difference']:.2g}"
              f"   {'OK' if not s['problems'] else 'PROBLEMS'}")
        for way in ("old", "new"):
            inside = s[f"{way}_in_jobs"]
            print(f"    {way}: the jobs' training {inside['train_seconds']:.1f} s, their wall time inside "
                  f"their processes {inside['wall_seconds']:.1f} s (summed over jobs)")
        for problem in s["problems"]:
            print(f"    {problem}")
        hint = differences_hint(a.old_threads, s["problems"])
        if hint:
            print(hint)
    print(json.dumps({"extra": a.extra, "old_threads": a.old_threads, "tolerance": tolerance, **summary}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
