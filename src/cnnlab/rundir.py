"""One process per run folder, and a finished run is never started over by accident.

- `lock(run_dir)`: an exclusive `fcntl.flock` on `run_dir/.cnnlab.lock`, which holds the PID. The
  kernel drops the lock when the process ends, however it ends, so a crash leaves no stale lock; a
  second process is refused with the holder's PID.
- `refuse_existing(run_dir, resume, overrides)`: a folder that holds a run (a completed results.json
  or checkpoints/last.pt) is only entered with `resume=true`; otherwise the message gives the exact
  command that continues it.

The CLI does both before Hydra writes `.hydra/` and train.log into a folder named on the command
line, and again inside the job for folders Hydra chose (sweep jobs, interpolated paths).
"""
from __future__ import annotations

import fcntl
import os
import re
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Dict, Iterable, List, Optional, Tuple

from cnnlab import atomic
from cnnlab.errors import ConfigError, write_failure

LOCK_FILE = ".cnnlab.lock"
TRUE = ("true", "yes", "on", "1")
# Hydra's flags after which no run happens: the pre-checks create, lock and refuse nothing for them
NO_RUN_FLAGS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion",
                "--version")
_held: Dict[str, Tuple[IO, Path]] = {}  # resolved folder -> this process's open lock file and its path
_hydra_files: Dict[str, Dict[str, bytes]] = {}  # resolved folder -> its .hydra/ files before this attempt


class RunDirRefused(ConfigError):
    """The folder is another process's or holds a run: nothing may be written into it, not even a record."""

    record = False


# ---------------------------------------------------------------- the lock
def lock(run_dir: Path) -> None:
    """Hold the folder's lock until `unlock` or the end of the process; re-entrant within a process."""
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    if key in _held:
        return
    path = run_dir / LOCK_FILE
    while True:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            f = open(path, "a+")
        except OSError as exc:
            raise RunDirRefused(f"cannot write to the run folder {run_dir}: {write_failure(exc)}. Choose a folder "
                                "you can write to with hydra.run.dir; nothing was run.") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "unknown"
            f.close()
            raise RunDirRefused(
                f"{run_dir} is in use: cnnlab process {pid} is running in it (it holds {path}). Two processes in one "
                f"folder would mix their checkpoints. Wait for it to end (or stop it: kill {pid}), or choose another "
                "hydra.run.dir; nothing was run.") from None
        try:  # the holder before us removes the file as it lets go: a lock on a removed file is no lock
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        f.close()
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    _held[key] = (f, path)


def unlock(run_dir: Path) -> None:
    """Let go of the folder: remove the lock file while still holding it (a process that opened it
    meanwhile sees it removed and opens the next one), then drop the lock."""
    held = _held.pop(str(Path(run_dir).resolve()), None)
    if held is not None:
        f, path = held
        try:
            path.unlink()
        except OSError:
            pass  # an unwritable folder keeps it; the next process still takes the lock
        f.close()


def holder(run_dir: Path) -> Optional[int]:
    """The PID holding the folder's lock, or None when nobody does."""
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return None
    with open(path) as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = f.read().strip()
            return int(text) if text.isdigit() else -1
    return None


# ---------------------------------------------------------------- a run already there
def existing_run(run_dir: Path) -> Optional[str]:
    """What of a run the folder holds, in words, or None."""
    from cnnlab.results import has_completed_results

    run_dir = Path(run_dir)
    if has_completed_results(run_dir):
        return "a completed run (results.json)"
    if (run_dir / "checkpoints" / "last.pt").is_file():
        return "an unfinished run (checkpoints/last.pt)"
    return None


def refuse_existing(run_dir: Path, resume: bool, overrides: Iterable[str]) -> None:
    what = existing_run(run_dir)
    if what is None or resume:
        return
    raise RunDirRefused(
        f"{run_dir} already holds {what}; a new run there would overwrite its checkpoints and results. To continue "
        f"it: {resume_command(run_dir, overrides)} . To start a new run, choose another hydra.run.dir, or leave "
        "it out for a fresh outputs/DATE/TIME folder; nothing was changed.")


def resume_command(run_dir: Path, overrides: Iterable[str]) -> str:
    """The command that continues this run: its overrides, resume=true and its folder, as it can be
    pasted back (a sweep job's folder holds `=` and `,`, which Hydra needs quoted), named as invoked."""
    from cnnlab.commands import override_arg, program as invoked

    program = invoked()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        program = f"torchrun --nproc_per_node={os.environ.get('LOCAL_WORLD_SIZE', '?')} -m cnnlab"
    kept = [o for o in overrides if not o.startswith(("resume=", "hydra.run.dir="))]
    return " ".join([program, *map(shlex.quote, kept), "resume=true", override_arg("hydra.run.dir", str(run_dir))])


# ---------------------------------------------------------------- the command line, before Hydra
def runs(argv: List[str]) -> bool:
    """False for Hydra's flags that only print (--cfg, --help, --info, --shell-completion)."""
    return not any(a.split("=", 1)[0] in NO_RUN_FLAGS for a in argv)


def multirun(argv: List[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in argv)


def override_value(arg: str) -> Optional[str]:
    """The value of `key=value` as Hydra reads it (quotes removed, `${now:...}` filled in), or None
    when it cannot be known before Hydra runs (another interpolation, a sweep, a parse error)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        override = OverridesParser.create().parse_override(arg)
        value = override.value()
    except Exception:  # noqa: BLE001 - Hydra reports a malformed override itself
        return None
    if override.is_sweep_override() or not isinstance(value, str):
        return None
    now = datetime.now()
    value = re.sub(r"\$\{now:([^}]*)\}", lambda m: now.strftime(m.group(1)), value)
    return None if "${" in value else value


def named_run_dir(argv: List[str]) -> Optional[Path]:
    """The run folder `hydra.run.dir=...` names literally on a command line that runs one job."""
    if multirun(argv) or not runs(argv):
        return None
    dirs = [a for a in argv if a.startswith("hydra.run.dir=") and "${" not in a]
    value = override_value(dirs[-1]) if dirs else None
    return Path(value).expanduser() if value else None


def resume_requested(argv: List[str]) -> bool:
    values = [a.partition("=")[2] for a in argv if a.startswith("resume=")]
    slurm_requeue = int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0
    return slurm_requeue or bool(values) and values[-1].strip("'\"").lower() in TRUE


def refuse_named_sweep(argv: List[str]) -> None:
    """Before Hydra starts a sweep into a hydra.sweep.dir whose jobs hold runs: refuse it without
    resume=true (Hydra would rewrite the sweep's multirun.yaml before each job is refused)."""
    if not multirun(argv) or not runs(argv) or resume_requested(argv):
        return
    dirs = [a for a in argv if a.startswith("hydra.sweep.dir=") and "${" not in a]
    value = override_value(dirs[-1]) if dirs else None
    sweep = Path(value).expanduser() if value else None
    if sweep is None or not sweep.is_dir():
        return
    held = sorted(p.name for p in sweep.iterdir() if p.is_dir() and existing_run(p))
    if held:
        overrides = [a for a in argv if not a.startswith("-") and "=" in a and not a.startswith("resume=")]
        program = "cnnlab" if Path(sys.argv[0]).name == "cnnlab" else "python -m cnnlab"
        raise RunDirRefused(
            f"hydra.sweep.dir={sweep} already holds the runs of a sweep ({len(held)} job folder(s): "
            f"{', '.join(held[:3])}{' ...' if len(held) > 3 else ''}); a new sweep there would overwrite them. To "
            f"continue them, each in its own folder: {program} -m {' '.join(map(shlex.quote, overrides))} resume=true . "
            "To start a new sweep, choose another hydra.sweep.dir, or leave it out for a fresh "
            "outputs/multirun/DATE/TIME folder; nothing was changed.")


def claim_named(argv: List[str]) -> Optional[Path]:
    """Before Hydra starts: lock the folder named by hydra.run.dir and refuse one that holds a run."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None  # under torchrun rank 0 holds the folder for every rank
    refuse_named_sweep(argv)
    run_dir = named_run_dir(argv)
    if run_dir is None:
        return None  # Hydra chooses the folder: it is locked inside the job
    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    lock(run_dir)
    try:
        refuse_existing(run_dir, resume_requested(argv), overrides)
    except RunDirRefused:
        unlock(run_dir)
        raise
    if existing_run(run_dir):
        _keep_hydra_files(run_dir)
    return run_dir


# ---------------------------------------------------------------- .hydra/ of the run before a resume
def _keep_hydra_files(run_dir: Path) -> None:
    """Hydra rewrites .hydra/ at every start: keep the run's copy, so a failed resume can put it back."""
    folder = Path(run_dir) / ".hydra"
    kept = {}
    for path in folder.glob("*.yaml"):
        try:
            kept[path.name] = path.read_bytes()
        except OSError:
            continue
    _hydra_files[str(Path(run_dir).resolve())] = kept


def restore_hydra_files(run_dir: Path) -> None:
    """After a failed attempt on an existing run: .hydra/ says again what produced the run's results."""
    kept = _hydra_files.pop(str(Path(run_dir).resolve()), None)
    for name, data in (kept or {}).items():
        try:
            atomic.write_bytes(Path(run_dir) / ".hydra" / name, data)
        except OSError:
            pass
