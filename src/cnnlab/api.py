"""cnnlab from Python: train in the calling process, read finished runs back, for notebooks and scripts.

    import cnnlab
    results = cnnlab.train(["model=mlp", "optim=sgd", "optim.lr=0.05"])   # as on the command line
    results = cnnlab.train({"model": "mlp", "optim": {"lr": 0.05}})     # or as a nested dict
    cnnlab.lr_find(["model=mlp"])["suggested_lr"]                       # the range test
    cnnlab.runs_frame("outputs").sort_values("test_acc")                 # every run, one row each

`train` composes the same config as the `cnnlab` command (the same conf/, resolvers and run-folder
naming), writes the same run folder and returns results.json's dict with `run_dir` added. A mistake
raises the CnnlabError whose message the command line would print; nothing calls sys.exit. What a
job changes in the process (Hydra's global state, logging handlers, torch's thread count, the global
random number generators, determinism flags) is put back when it returns, so calls can follow each
other in one notebook without leaking settings.
"""
from __future__ import annotations

import logging
import random
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, List, Mapping, Union

from cnnlab.errors import CnnlabError, ConfigError

Overrides = Union[None, str, Iterable[str], Mapping[str, Any]]
CONSOLE_FORMAT, FILE_FORMAT = "%(message)s", "[%(asctime)s] %(message)s"  # as conf/hydra/job_logging/


def train(overrides: Overrides = None) -> dict:
    """Run one job as `cnnlab OVERRIDES...` would; return its results with `run_dir` (a str) added."""
    def task(settings, run_dir: Path, listed: List[str]) -> dict:
        from cnnlab.run import run_job  # torch loads only once the config is known good

        return run_job(settings, run_dir, listed)

    return run_composed(as_overrides(overrides), task)


def lr_find(overrides: Overrides = None) -> dict:
    """The learning-rate range test, as `cnnlab-lrfind OVERRIDES...`; returns lr_find.json's dict
    (`suggested_lr`, `min_loss_lr`, `curve`, ...) with `run_dir` added."""
    from cnnlab import lrfind as finder

    return run_composed(finder.with_default_dir(as_overrides(overrides)), finder.range_test)


def as_overrides(overrides: Overrides) -> List[str]:
    """A list of `key=value` strings from a list, one command-line string, or a nested dict."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return shlex.split(overrides)
    if isinstance(overrides, Mapping):
        return [f"{key}={_override_value(value)}" for key, value in _flatten(overrides)]
    return [str(item) for item in overrides]


def _flatten(tree: Mapping, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _override_value(value: Any) -> str:
    """A Python value in Hydra's override grammar: true/false/null, [a,b], quoted strings where needed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if text and all(c.isalnum() or c in "._-/:+~" for c in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_composed(overrides: List[str], task: Callable[[Any, Path, List[str]], dict]) -> dict:
    """Compose conf/ with `overrides` as the command line does, then `task(settings, run_dir, overrides)`.

    Shared by `train` and the learning-rate finder; a failed job leaves a results.json saying so, as
    on the command line, and raises the error.
    """
    from cnnlab import cli  # registers the schema and the run-folder resolvers, as the command does

    conf = Path(cli._config_dir())
    groups = [p.name for p in conf.iterdir() if p.is_dir()]
    problem = (cli.unknown_key_message(overrides, groups) or cli.family_key_message(overrides, conf)
               or cli._unwritable_output(overrides))  # the command line's checks, in its order
    if problem:
        raise ConfigError(problem)

    from cnnlab.train.sanity import hydra_overrides

    overrides = list(overrides) + hydra_overrides(overrides)  # as the command line adds them

    def job(cfg) -> dict:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        from cnnlab import naming
        from cnnlab.config import validate

        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        naming.release_unused(run_dir)  # as the command line does
        listed = list(hydra_cfg.overrides.task)
        to_file = not OmegaConf.select(cfg, "trainer.fast_dev_run")  # which writes nothing, train.log included
        with _job_logging(run_dir, to_file):
            try:
                results = task(validate(cfg), run_dir, listed)
            except CnnlabError as exc:
                cli._record_failure(run_dir, listed, exc)
                return _Failed(exc)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside Hydra
                return _Failed(exc)
        return {**results, "run_dir": str(run_dir)}

    with _process_state_restored():
        return _hydra_run(cli._config_dir(), overrides, job)


def _hydra_run(config_dir: str, overrides: List[str], job: Callable) -> dict:
    """Hydra's own run mode (what @hydra.main does for one job), with its global state cleared after."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from cnnlab import naming

    global_hydra = GlobalHydra.instance()
    previous, previous_cfg = global_hydra.hydra, HydraConfig.instance().cfg
    global_hydra.clear()
    naming._claimed.clear()  # a second call in the same second gets TIME-1, as a second process would
    try:
        hydra = Hydra.create_main_hydra2(task_name="cli", config_search_path=create_config_search_path(config_dir))
        try:
            returned = hydra.run(config_name="config", task_function=job, overrides=list(overrides),
                                 with_log_configuration=False)
        except (HydraException, OmegaConfBaseException) as exc:
            from cnnlab.hydra_errors import describe  # the command line's wording of Hydra's errors

            raise ConfigError(describe(exc)) from None
        value = returned.return_value
        if isinstance(value, _Failed):
            raise value.error
        return value
    finally:
        global_hydra.clear()
        global_hydra.hydra = previous
        HydraConfig.instance().cfg = previous_cfg


class _Failed:
    """A job's exception, carried out of Hydra, which would print its own line to stderr when re-raising."""

    def __init__(self, error: Exception):
        self.error = error


@contextmanager
def _job_logging(run_dir: Path, to_file: bool):
    """The command line's console lines, and train.log beside them, for this job only."""
    logger = logging.getLogger("cnnlab")
    saved = logger.level, logger.propagate, list(logger.handlers)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handlers = [console]
    if to_file:
        run_dir.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(run_dir / "train.log")
        file.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(file)
    logger.handlers = handlers
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the caller's own root handlers would print every line twice
    try:
        yield
    finally:
        for handler in handlers:
            handler.close()
        logger.level, logger.propagate, logger.handlers = saved[0], saved[1], saved[2]


@contextmanager
def _process_state_restored():
    """Put back what a job sets process-wide: threads, random generators, determinism, TF32, freed
    memory kept, STARTED."""
    import numpy as np
    import torch  # the job imports it anyway; imported first, its defaults can be saved

    import cnnlab
    from cnnlab.train.memory import freed_memory_kept, keep_freed_memory

    saved = {"python": random.getstate(), "numpy": np.random.get_state(), **_torch_state(torch),
             "kept": freed_memory_kept()}
    cnnlab.STARTED = time.perf_counter()  # start-up is measured from the call, not from `import cnnlab`
    try:
        yield
    finally:
        random.setstate(saved["python"])
        np.random.set_state(saved["numpy"])
        _restore_torch(torch, saved["torch"])
        keep_freed_memory(saved["kept"])  # a notebook's memory goes back to the OS again


def _torch_state(torch) -> dict:
    state = {"threads": torch.get_num_threads(), "rng": torch.get_rng_state(),
             "deterministic": torch.are_deterministic_algorithms_enabled(),
             "cudnn": (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                       torch.backends.cudnn.allow_tf32),
             "matmul_tf32": torch.backends.cuda.matmul.allow_tf32}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return {"torch": state}


def _restore_torch(torch, state: dict) -> None:
    if torch.get_num_threads() != state["threads"]:
        torch.set_num_threads(state["threads"])
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if torch.are_deterministic_algorithms_enabled() != state["deterministic"]:
        torch.use_deterministic_algorithms(state["deterministic"])
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
     torch.backends.cudnn.allow_tf32) = state["cudnn"]
    torch.backends.cuda.matmul.allow_tf32 = state["matmul_tf32"]


# ---------------------------------------------------------------- reading runs back
def load_runs(path: Union[str, Path] = "outputs") -> List[dict]:
    """Every run at or below `path` (a run, a sweep, a folder of sweeps), in the order they ran.

    Each is a dict: `run_dir`, `name` (the folder, relative to `path`), `status` (completed, failed,
    interrupted, unfinished), `overrides` (key -> value as typed), `config` (.hydra/config.yaml),
    `results` (results.json without its history, or None) and `history` (one dict per epoch).
    Folders of `trainer.fast_dev_run` and of the learning-rate finder are not runs and are skipped.
    """
    from cnnlab.report.collect import find_runs, _read_yaml

    root = Path(path)
    if not root.exists():
        raise ConfigError(f"there is no folder {root}: give the folder of a run or a sweep "
                          "(e.g. outputs/multirun/DATE/TIME).")
    runs = []
    for run in find_runs(root):
        config = _read_yaml(run.path / ".hydra" / "config.yaml") or {}
        if (config.get("trainer") or {}).get("fast_dev_run") or (run.path / "lr_find.json").exists():
            continue
        results = dict(run.results) if run.results is not None else None
        history = results.pop("history", []) if results is not None else []
        name = run.path.relative_to(root).as_posix() if run.path != root else run.path.name
        runs.append({"run_dir": str(run.path), "name": name, "status": run.status,
                     "overrides": dict(run.overrides), "config": config, "results": results,
                     "history": history})
    return runs


def runs_frame(path: Union[str, Path] = "outputs"):
    """`load_runs(path)` as a pandas DataFrame: one row per run, its results' numbers and its config.

    Columns: `name`, `status`, `overrides` (as typed, space-separated), every number and string of
    results.json (test_acc, best_val_acc, ...), then every config key, dotted (`optim.lr`,
    `model.dropout`), so `df.groupby("optim.name").test_acc.mean()` works.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("cnnlab.runs_frame needs pandas: pip install 'cnnlab[frames]' (or pandas itself); "
                          "cnnlab.load_runs gives the same runs as plain dicts.") from None
    rows = []
    for run in load_runs(path):
        row = {"name": run["name"], "status": run["status"],
               "overrides": " ".join(f"{k}={v}" for k, v in run["overrides"].items())}
        for key, value in (run["results"] or {}).items():
            if key not in ("overrides", "status") and (value is None or isinstance(value, (int, float, str))):
                row[key] = value
        for key, value in _flatten(run["config"]):
            row.setdefault(key, tuple(value) if isinstance(value, list) else value)
        row["run_dir"] = run["run_dir"]
        rows.append(row)
    return pd.DataFrame(rows)
