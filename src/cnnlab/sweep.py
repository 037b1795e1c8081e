"""Sweeps that finish, fail loudly and pick up where they stopped.

Whatever the launcher (basic, local joblib processes, SLURM through submitit), the sweep's outcome
is read from its jobs' records when it ends, never from one process's memory:

- `sweep_summary.json` in the sweep folder and a summary on the console: how many jobs completed,
  failed, were interrupted or skipped, each failure's folder, overrides and first line of its error,
  and the command that continues the sweep. The sweep's exit code is the worst of its jobs' codes.
- `resume=true` with the same `hydra.sweep.dir` continues a stopped sweep: a job that completed with
  the same config is skipped, one that did not continues from its `last.pt`; `sweep.rerun=failed`
  runs only the failed ones again.
- `sweep.fail_fast=true` stops the sweep at the first failure.
- With the local launcher, each job takes a GPU of its own while it runs, and SIGTERM or Ctrl-C to
  the sweep's main process stops its workers, each saving its `last.pt` first.

Bookkeeping lives in `<sweep>/.cnnlab/`: `sweep.json` (the main process), `stop.json` (why the sweep
is stopping), `running/` (one file per job in progress), `jobs/` (jobs skipped or not started by this
invocation) and `gpus/` (a lock per GPU held).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shlex
import signal
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback

from cnnlab import atomic
from cnnlab.commands import override_arg, program
from cnnlab.results import objective_value

log = logging.getLogger("cnnlab")

STATE = ".cnnlab"
SUMMARY_FILE = "sweep_summary.json"
RERUN = ("unfinished", "failed")
_STOP_WAIT_S = 300.0  # how long the main process waits for its workers to save and stop


class TrialFailed(Exception):
    """Raised to the Optuna sweeper for a failed job, which it records as a FAIL trial."""


# ---------------------------------------------------------------- a job's record
def job_status(run_dir: Path) -> Optional[dict]:
    """The newest record of a job: results.json or a later failed attempt (attempts/*.json), or None."""
    from cnnlab.results import latest_attempt

    return latest_attempt(run_dir)


def exit_code_of(record: Optional[dict]) -> int:
    """The exit code a job's record stands for: 0 completed, 1 failed (or died without a record),
    2 refused before training, 130/143 interrupted."""
    if record is None:
        return 1
    if record.get("exit_code") is not None:
        return int(record["exit_code"])
    status = record.get("status")
    if status == "completed":
        return 0
    if status == "interrupted":
        return 143 if "SIGTERM" in str(record.get("error", "")) else 130
    return 1


# ---------------------------------------------------------------- where things are
def _hydra():
    from hydra.core.hydra_config import HydraConfig

    try:
        return HydraConfig.get()
    except ValueError:  # no Hydra context: a test calling run_job directly
        return None


def _in_sweep(hydra_cfg) -> bool:
    from hydra.types import RunMode

    return hydra_cfg is not None and hydra_cfg.mode == RunMode.MULTIRUN


def _launcher(hydra_cfg) -> str:
    target = str(hydra_cfg.launcher.get("_target_", ""))
    return "local" if "joblib" in target else "slurm" if "submitit" in target else "basic"


def runs_in_local_worker() -> bool:
    """Whether this job runs in a worker process of the local launcher (hydra/launcher=auto or local)."""
    hydra_cfg = _hydra()
    return _in_sweep(hydra_cfg) and _launcher(hydra_cfg) == "local"


def _state(sweep_dir) -> Path:
    return Path(sweep_dir) / STATE


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def job_label() -> str:
    """`${cnnlab_job_label:}` in the console log format: `[job folder] ` for jobs that run side by
    side (local or SLURM launcher), so interleaved lines say whose they are; empty otherwise."""
    hydra_cfg = _hydra()
    if not _in_sweep(hydra_cfg) or _launcher(hydra_cfg) == "basic":
        return ""
    try:
        name = Path(hydra_cfg.runtime.output_dir).name
    except Exception:  # noqa: BLE001 - a label must never stop a job
        return ""
    return f"[{name}] ".replace("%", "%%")


def note_in_train_log(message: str) -> None:
    """Write a line to the job's train.log only (the console already shows it on stderr)."""
    record = logging.LogRecord("cnnlab", logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()


# ---------------------------------------------------------------- one job of a sweep
@dataclass
class JobPlan:
    skip: bool = False  # do not train: completed before (resume), or the sweep is stopping
    objective: Any = None  # what to return to the sweeper when skipping
    why: str = ""
    action: str = "run"  # run | skipped (completed before, or not chosen by sweep.rerun) | not_started


@contextmanager
def job(settings, run_dir: Path):
    """Around one job of a sweep (a no-op for a single run): decide whether it trains, mark it as
    running, and give it a GPU of its own under the local launcher."""
    hydra_cfg = _hydra()
    if not _in_sweep(hydra_cfg):
        yield JobPlan()
        return
    state = _state(hydra_cfg.sweep.dir)
    launcher = _launcher(hydra_cfg)
    if launcher == "local":
        _detach_from_terminal(state)
    plan = _plan(settings, Path(run_dir), state)
    if plan.skip:
        log.info(f"cnnlab: {plan.why}")
        _write_json(state / "jobs" / f"{Path(run_dir).name}.json",
                    {"job": str(run_dir), "action": plan.action, "why": plan.why})
        yield plan
        return
    marker = state / "running" / f"{socket.gethostname()}-{os.getpid()}.json"
    _write_json(marker, {"pid": os.getpid(), "host": socket.gethostname(), "job": str(run_dir)})
    gpu = _take_gpu(settings, state, hydra_cfg, launcher)
    try:
        yield plan
    finally:
        marker.unlink(missing_ok=True)
        if gpu is not None:
            os.close(gpu)


def _plan(settings, run_dir: Path, state: Path) -> JobPlan:
    stop = _read_json(state / "stop.json")
    if stop:
        return JobPlan(skip=True, action="not_started",
                       why=f"not started: the sweep is stopping ({stop.get('reason')}).")
    if not settings.resume:
        return JobPlan()
    record = job_status(run_dir)
    status = (record or {}).get("status")
    rerun = settings.sweep.rerun
    if status == "completed":
        if _same_config(settings, run_dir) or rerun == "failed":
            return JobPlan(skip=True, action="skipped", objective=objective_value(record),
                           why=f"skipped {run_dir.name}: completed before with this config.")
        return JobPlan()  # completed with other settings (more epochs): resume checks and continues
    if rerun == "failed" and status != "failed":
        return JobPlan(skip=True, action="skipped", why=f"skipped {run_dir.name}: not failed ({status or 'unfinished'}) "
                                      "and sweep.rerun=failed.")
    return JobPlan()


def _same_config(settings, run_dir: Path) -> bool:
    """Whether the job's checkpoint was trained with this config (settings that change nothing saved,
    such as progress bars or the device, aside)."""
    import dataclasses

    from cnnlab.errors import CnnlabError
    from cnnlab.train.checkpoint import load_checkpoint
    from cnnlab.train.resume_settings import compare

    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        return True  # nothing to continue from: the record is all there is
    try:
        saved = load_checkpoint(path).get("config")
    except CnnlabError:
        return False  # unreadable: let the resume say what is wrong
    refused, honoured = compare(saved, dataclasses.asdict(settings))
    return not refused and not honoured


def _detach_from_terminal(state: Path) -> None:
    """A local worker leaves the terminal's process group, so Ctrl-C reaches only the main process,
    which passes it on exactly once (a signal that came twice would stop a job without saving)."""
    info = _read_json(state / "sweep.json") or {}
    if info.get("pid") == os.getppid() and info.get("host") == socket.gethostname():
        try:
            os.setpgid(0, 0)
        except OSError:
            pass


# ---------------------------------------------------------------- one GPU per parallel job
def gpu_count() -> int:
    if os.environ.get("CNNLAB_TEST_GPU_COUNT"):  # the tests' stand-in for a machine with GPUs
        return int(os.environ["CNNLAB_TEST_GPU_COUNT"])
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def claim_gpu(state: Path, count: int, job_num: int) -> tuple[int, Optional[int]]:
    """The first GPU no other job of this sweep holds, starting at job_num % count, with the lock
    (an open file descriptor) that holds it; when all are taken, job_num % count, unlocked."""
    folder = state / "gpus"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        index = (job_num + k) % count
        fd = os.open(folder / f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return index, fd
        except OSError:
            os.close(fd)
    return job_num % count, None


def _take_gpu(settings, state: Path, hydra_cfg, launcher: str) -> Optional[int]:
    if launcher != "local" or settings.device not in ("auto", "cuda"):
        return None
    count = gpu_count()
    if count < 2:
        return None
    index, fd = claim_gpu(state, count, int(hydra_cfg.job.num))
    log.info(f"cnnlab: this job trains on cuda:{index} (GPU {index + 1} of {count}, "
             f"{'its own' if fd is not None else 'shared: more parallel jobs than GPUs'})")
    if not os.environ.get("CNNLAB_TEST_GPU_COUNT"):
        settings.device = f"cuda:{index}"
    return fd


# ---------------------------------------------------------------- a failed job
def after_failure(cfg, run_dir: Path, exc) -> Any:
    """What a failed or interrupted job gives back. A single run: Ctrl-C or SIGTERM ends the process.
    In a sweep the record is already written; the Optuna sweeper gets an exception (a FAIL trial,
    the search goes on), the others None; sweep.fail_fast and signals stop the whole sweep."""
    hydra_cfg = _hydra()
    status = getattr(exc, "status", "failed")
    if not _in_sweep(hydra_cfg):
        if status == "interrupted":
            raise SystemExit(exc.exit_code)
        return None
    from omegaconf import OmegaConf

    state = _state(hydra_cfg.sweep.dir)
    launcher = _launcher(hydra_cfg)
    fail_fast = bool(OmegaConf.select(cfg, "sweep.fail_fast", default=False))
    if status == "interrupted" or fail_fast:
        first = not (state / "stop.json").exists()  # else the sweep is already stopping
        if first:
            reason = "fail_fast" if status != "interrupted" else "signal"
            _write_json(state / "stop.json", {"reason": reason, "job": str(run_dir), "exit_code": exc.exit_code,
                                              "error": str(exc).splitlines()[0] if str(exc) else ""})
        if launcher == "basic":
            raise SystemExit(exc.exit_code)  # the jobs run in this process: stop here
        if launcher == "local" and first:
            _ask_main_to_stop(state)
    if "optuna" in str(hydra_cfg.sweeper.get("_target_", "")):
        raise TrialFailed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return None


def _ask_main_to_stop(state: Path) -> None:
    info = _read_json(state / "sweep.json") or {}
    if info.get("pid") == os.getppid() and info.get("host") == socket.gethostname():
        os.kill(info["pid"], signal.SIGUSR1)


# ---------------------------------------------------------------- the main process
_active: dict = {}  # this process's sweep: folder, launcher, the summary once written


class SweepCallback(Callback):
    """Registered in conf/config.yaml (hydra.callbacks): runs in the sweep's main process."""

    def on_multirun_start(self, config, **kwargs) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        state = _state(sweep_dir)
        for name in ("jobs", "running"):
            for leftover in (state / name).glob("*.json"):
                leftover.unlink(missing_ok=True)
        (state / "stop.json").unlink(missing_ok=True)
        os.environ.setdefault("CNNLAB_PROGRAM", program())
        os.environ["CNNLAB_SWEEP_ARGV"] = json.dumps(sys.argv[1:])  # for job names in workers (naming.py)
        _write_json(state / "sweep.json", {"pid": os.getpid(), "host": socket.gethostname(),
                                           "started_at": time.time(), "argv": sys.argv[1:]})
        _active.clear()
        _active.update(dir=sweep_dir, launcher=_launcher(config.hydra), argv=list(sys.argv[1:]))
        if _active["launcher"] == "local":
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                signal.signal(signum, _stop_workers)

    def on_multirun_end(self, config, **kwargs) -> None:
        finish(0)


def _stop_workers(signum, frame) -> None:
    """In the main process of a local sweep: pass SIGINT/SIGTERM on to the running jobs (SIGUSR1:
    a job asked for it, see stop.json), wait until they saved their checkpoints, and stop."""
    state = _state(_active["dir"])
    stop = _read_json(state / "stop.json")
    forward = signal.SIGTERM if signum == signal.SIGUSR1 else signum
    if stop is None:
        name = signal.Signals(signum).name
        stop = {"reason": name, "exit_code": 128 + signum}
        _write_json(state / "stop.json", stop)
        print(f"\ncnnlab: {name} received: stopping the sweep's jobs, each saves its last.pt "
              "(send it again to stop at once).", file=sys.stderr, flush=True)
    elif _active.get("stopping"):
        if signum == signal.SIGUSR1:
            return  # a job reporting its interruption: already handled
        _signal_running(state, forward)  # the second one: the jobs stop at once
        raise SystemExit(128 + signum)
    _active["stopping"] = True
    _signal_running(state, forward)
    deadline = time.monotonic() + _STOP_WAIT_S
    while list((state / "running").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    raise SystemExit(stop.get("exit_code") or 128 + signum)


def _signal_running(state: Path, signum: int) -> None:
    host = socket.gethostname()
    for marker in (state / "running").glob("*.json"):
        info = _read_json(marker) or {}
        pid = info.get("pid")
        if info.get("host") != host or not isinstance(pid, int) or pid == os.getpid():
            continue
        if _parent_of(pid) != os.getpid():
            marker.unlink(missing_ok=True)  # not one of ours (a pid reused, a job from an older sweep)
            continue
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            marker.unlink(missing_ok=True)


def _parent_of(pid: int) -> Optional[int]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def finish(exit_code: int) -> int:
    """At the end of this process: for a sweep, write and print its summary once and return its exit
    code (the worst of its jobs, or the first failure's under sweep.fail_fast); else `exit_code`."""
    if not _active.get("dir"):
        return exit_code
    if "summary" not in _active:
        summary = summarize(_active["dir"], _active.get("argv", []))
        if exit_code > summary["exit_code"]:  # the sweep itself stopped: a signal, Hydra's own error
            summary["exit_code"] = exit_code
            summary.setdefault("resume_command", resume_sweep_command(_active["dir"], _active.get("argv", [])))
        _active["summary"] = summary
        try:
            _write_json(_active["dir"] / SUMMARY_FILE, summary)
        except OSError as exc:
            print(f"cnnlab: could not write {_active['dir'] / SUMMARY_FILE}: {exc.strerror or exc}",
                  file=sys.stderr)
        stream = sys.stdout if summary["exit_code"] == 0 else sys.stderr
        print(format_summary(summary), file=stream, flush=True)
    code = _active["summary"]["exit_code"]
    return code if code else exit_code


def forget() -> None:
    """A new command in this process (cnnlab.cli.main called again): no sweep of an earlier one."""
    _active.clear()


def jobs_ran() -> bool:
    """Whether this process's sweep has launched any job yet."""
    return bool(_active.get("dir")) and bool(job_dirs(_active["dir"]))


_NO_TRIAL = "No trials are completed yet"  # Optuna's study.best_trial when every trial failed


def input_error(message: str) -> tuple:
    """(the paragraph to print, the exit code) for what Hydra's error handling raised. Before any
    job: a bad input, as Hydra said it (2). After jobs ran: a value that only a combination breaks,
    refused when its job composed (sweep_validation), the jobs before it kept (2); or a search whose
    every trial failed (1), the trials listed in the summary below."""
    if not jobs_ran():
        return message, 2
    if _NO_TRIAL in message:
        return ("no trial of the search completed, so it has no best trial: every trial failed (each "
                "one's error is in the summary below).", 1)
    kept = "the sweep stopped at this job; the jobs before it are kept (resume=true with a fixed command continues)"
    return re.sub(r"[Nn]othing was run", kept, message), 2


def job_dirs(sweep_dir: Path) -> list:
    """Every job folder of a sweep: those holding Hydra's .hydra/overrides.yaml."""
    sweep_dir = Path(sweep_dir)
    found = []
    for path in sweep_dir.glob("**/.hydra/overrides.yaml"):
        folder = path.parent.parent
        parts = folder.relative_to(sweep_dir).parts
        if folder != sweep_dir and not any(p.startswith(".") for p in parts):
            found.append(folder)
    return sorted(found)


def summarize(sweep_dir: Path, argv: list) -> dict:
    sweep_dir = Path(sweep_dir)
    state = _state(sweep_dir)
    actions = {}
    for path in (state / "jobs").glob("*.json"):
        record = _read_json(path) or {}
        actions[Path(str(record.get("job", ""))).name] = record.get("action")
    counts = {"completed": 0, "failed": 0, "interrupted": 0, "unfinished": 0, "skipped": 0, "not_started": 0}
    failures, codes = [], []
    for folder in job_dirs(sweep_dir):
        record = job_status(folder)
        status = (record or {}).get("status") or "unfinished"
        action = actions.get(folder.name)
        if action == "not_started" and status != "completed":
            counts["not_started"] += 1
            continue
        if action == "skipped" and status == "completed":
            counts["skipped"] += 1
        else:
            counts[status if status in counts else "failed"] += 1
        codes.append(exit_code_of(record))
        if status != "completed":
            error = str((record or {}).get("error") or "no record: the process ended without one "
                                                       "(killed, out of memory, node lost)")
            failures.append({"folder": str(folder.relative_to(sweep_dir)), "status": status,
                             "overrides": (record or {}).get("overrides") or _overrides(folder),
                             "error": error.splitlines()[0] if error else "", "exit_code": codes[-1]})
    stop = _read_json(state / "stop.json")
    exit_code = max(codes, default=0)
    if stop and stop.get("reason") == "fail_fast":
        exit_code = int(stop.get("exit_code") or 1)
    elif stop and stop.get("exit_code"):  # a signal: a job it reached before training left no record
        exit_code = max(exit_code, int(stop["exit_code"]))
    summary = {"sweep_dir": str(sweep_dir), "jobs": sum(counts.values()), **counts, "exit_code": exit_code,
               "failures": failures, "stopped": stop, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    best = _optuna_best(sweep_dir)
    if best:
        summary["best"] = best
    if exit_code or counts["not_started"]:
        summary["resume_command"] = resume_sweep_command(sweep_dir, argv)
    return summary


def _overrides(folder: Path) -> list:
    try:
        import yaml

        return list(yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or [])
    except Exception:  # noqa: BLE001 - a summary shows what it can
        return []


def _optuna_best(sweep_dir: Path) -> Optional[dict]:
    """The Optuna sweeper's optimization_results.yaml, with the best trial as overrides to paste."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return None
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    params = data.get("best_params") or {}
    return {"value": data.get("best_value"), "params": params,
            "overrides": [f"{k}={v}" for k, v in params.items()]}


def resume_sweep_command(sweep_dir: Path, argv: list) -> str:
    kept = [a for a in argv if not a.startswith(("resume=", "hydra.sweep.dir=", "sweep.rerun="))]
    if not any(a in ("-m", "--multirun") for a in kept):
        kept.insert(0, "-m")
    return " ".join([program(), *map(shlex.quote, kept), "resume=true",
                     override_arg("hydra.sweep.dir", str(sweep_dir))])


def format_summary(summary: dict) -> str:
    parts = [f"{summary[k]} {k.replace('_', ' ')}" for k in
             ("completed", "failed", "interrupted", "unfinished", "skipped", "not_started") if summary[k]]
    lines = [f"Sweep: {summary['jobs']} jobs: {', '.join(parts) or 'none ran'}; exit code "
             f"{summary['exit_code']}. Summary in {Path(summary['sweep_dir']) / SUMMARY_FILE}"]
    stop = summary.get("stopped")
    if stop and stop.get("reason") == "fail_fast":
        lines.append(f"  stopped at the first failure (sweep.fail_fast=true): {stop.get('job')}")
    for failure in summary["failures"]:
        lines.append(f"  {failure['status']}: {failure['folder']} ({' '.join(failure['overrides'])}): "
                     f"{failure['error']}")
    if summary.get("best"):
        best = summary["best"]
        lines.append(f"  best trial: {best['value']} with {' '.join(best['overrides'])}")
    if summary.get("resume_command"):
        lines.append(f"Continue the sweep with: {summary['resume_command']}")
        if summary["failed"]:
            lines.append("  (add sweep.rerun=failed to run only the failed jobs again)")
    return "\n".join(lines)
