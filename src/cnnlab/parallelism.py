"""How much of the machine a run or a sweep uses: worker processes per sweep, threads per run.

Small models lose badly to thread contention on a few cores: a 2-thread pool waits at every op for
its slower thread, and on a busy machine that thread is often descheduled. Processes do not share a
pool, so a sweep runs best as one single-thread worker per core (`hydra/launcher=auto`, which the
course presets use), and a lone run of a small model runs best on one thread
(`trainer.num_threads=auto`, the default). Measurements: docs/benchmarks.md.

Nothing here imports torch: the sweep's launcher process decides before any job starts.
"""
from __future__ import annotations

import os
from typing import Optional

# A worker process holds torch (CUDA build: ~0.75 GB resident) plus its data and model.
WORKER_MEMORY_BYTES = 1 << 30
# Workers sharing one GPU: each holds a CUDA context (~0.5 GB of device memory) besides its model;
# a guess that keeps a laptop GPU's memory safe, not yet measured against more.
WORKERS_PER_GPU = 4
# Below this many multiply-accumulates per training batch (forward) one thread, whatever the load.
# Measured on an idle 2-core Xeon (docs/benchmarks.md, "Threads"): at 6.1M (mlp5x100) a second
# thread gained 1.06x, within noise, at 43M (lecture_cnn on digits, batch 128) 1.50x, at 246M
# (fast_cnn) 1.55x; beside a busy process a second thread was 2.2-2.5x slower. Above the threshold
# the count follows the load, so the same seed can run on 1 or 2 threads and sum in another order.
# 50M keeps the course's MLPs and the default lecture CNN (21.7M at batch 64) on one thread, so the
# default run's numbers do not depend on what else the machine is doing, at the cost of the 1.5x
# an idle machine would give it (10M was tried: test_training's resume check then failed whenever
# the load differed between its runs).
SMALL_STEP_MACS = 50e6
# Idle cores are rounded to the nearest whole core: 1.6 idle of 2 is 2 threads, 1.4 is 1.
BUSY_MARGIN = 0.5


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or SLURM), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def available_memory() -> Optional[int]:
    """MemAvailable from /proc/meminfo in bytes, or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use, without importing torch: CUDA_VISIBLE_DEVICES if set, else
    the driver's list in /proc (0 where there is no driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [e for e in visible.split(",") if e.strip()]
        return 0 if not entries or entries[0].strip() == "-1" else len(entries)
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def sweep_workers(jobs: Optional[int], cores: Optional[int] = None, memory: Optional[int] = None,
                  gpus: int = 0) -> int:
    """Worker processes for a local sweep: one per usable core, no more than there are jobs, no more
    than fit in the free memory, and where the jobs train on GPUs no more than WORKERS_PER_GPU per
    GPU. `jobs=None` (unknown, e.g. another sweeper) is not capped."""
    cores = usable_cores() if cores is None else cores
    workers = cores if jobs is None else min(cores, jobs)
    if memory is not None:
        workers = min(workers, memory // WORKER_MEMORY_BYTES)
    if gpus:
        workers = min(workers, WORKERS_PER_GPU * gpus)
    return max(1, workers)


def count_sweep_jobs(sweeper_params, task_overrides) -> Optional[int]:
    """How many jobs Hydra's basic sweeper makes of the preset's params and the command line's
    overrides (the command line wins on a shared key, as in the sweeper); None if unknown."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(task_overrides or [])
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(overrides, None)
    except Exception:  # noqa: BLE001 - globs, intervals: leave the count to the launcher
        return None
    return sum(len(batch) for batch in batches)


def auto_sweep_workers(*, _root_) -> int:
    """`${cnnlab_sweep_workers:}` in conf/hydra/launcher/auto.yaml, resolved in the launching process."""
    hydra = _root_.hydra
    jobs = None
    if str(hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        jobs = count_sweep_jobs(hydra.sweeper.get("params"), hydra.overrides.task)
    gpus = 0 if str(_root_.get("device", "auto")) == "cpu" else visible_gpus()
    return sweep_workers(jobs, memory=available_memory(), gpus=gpus)


def choose_threads(step_macs: float, cores: int, load: Optional[float] = None, limit: Optional[int] = None) -> int:
    """`trainer.num_threads=auto`: 1 thread for a small step (`step_macs`: multiply-accumulates of one
    forward pass over a training batch) or on a busy machine (`load`: other processes' runnable
    threads, machine_load()); else every idle core. `limit` caps it (OMP_NUM_THREADS,
    which joblib's workers get as cores // workers)."""
    threads = cores if limit is None else min(cores, limit)
    if step_macs < SMALL_STEP_MACS:
        return 1
    if load is not None:
        idle = cores - load
        threads = min(threads, int(idle + BUSY_MARGIN))
    return max(1, threads)


def thread_limit() -> Optional[int]:
    """OMP_NUM_THREADS as a positive integer, or None."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def _own_running_threads() -> int:
    """This process's threads that are runnable now (an OpenMP pool may still spin after an op)."""
    count = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(os.path.join(task.path, "stat")) as f:
                count += f.read().rpartition(")")[2].split()[0] == "R"
        except (OSError, IndexError):
            pass
    return count


def machine_load(samples: int = 5, interval: float = 0.004) -> Optional[float]:
    """Runnable threads of other processes right now (/proc/loadavg's running count less this
    process's own, median of a few samples), falling back to the 1-minute load average. Not the
    1-minute average first: in a sequential sweep it still carries this process's previous job."""
    import statistics
    import time

    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
            counts.append(max(0, running - _own_running_threads()))
        except (OSError, ValueError, IndexError):
            break
        if i + 1 < samples:
            time.sleep(interval)
    if counts:
        return float(statistics.median(counts))
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _register() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("cnnlab_sweep_workers", auto_sweep_workers, replace=True)


_register()  # conf/hydra/launcher/auto.yaml reads ${cnnlab_sweep_workers:}
