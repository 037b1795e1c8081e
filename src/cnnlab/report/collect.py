"""Find the runs under a folder: a sweep, a sweep of sweeps, or a single run.

A run folder is one that holds results.json (finished or failed), .hydra/ (started: a folder
with .hydra/ but no results.json is a run that is still going or was killed) or attempts/ (the
records of failed attempts, kept beside a completed results.json that they never replace). Runs are
never dropped for having failed, and a results.json that cannot be read is reported, not fatal.

Older runs lack some keys; `complete_results` fills them in as those runs meant them (before
`trainer.monitor`, "best" was the epoch of highest validation accuracy).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from cnnlab.results import RESULTS_FILE


@dataclass
class Run:
    path: Path
    overrides: Dict[str, str]  # key -> value as typed on the command line, seed included
    results: Optional[dict]  # None for an unfinished run
    status: str  # completed | failed | interrupted | unfinished | unreadable
    error: Optional[str] = None
    attempts: List["Attempt"] = field(default_factory=list)  # failed attempts, oldest first
    legacy: bool = False  # written before results.json recorded `monitor`
    order: tuple = ()  # (sweep folder, job number, name): the order the sweep ran them in
    _config: Optional[dict] = field(default=None, repr=False)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def seed(self) -> Any:
        if self.results and self.results.get("seed") is not None:
            return self.results["seed"]
        return self.overrides.get("seed")

    def value(self, key: str) -> str:
        """The value of a config key in this run: its override, else its composed config, else default."""
        if key in self.overrides:
            return self.overrides[key]
        node: Any = self._composed_config()
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):  # a group choice such as `model=`: every cnnlab group has a name
            node = node.get("name")
        return "default" if node is None else str(node)

    def _composed_config(self) -> dict:
        if self._config is None:
            self._config = _read_yaml(self.path / ".hydra" / "config.yaml") or {}
        return self._config


@dataclass
class Attempt:
    """One attempts/*.json record: a failed or interrupted attempt in a run folder."""
    path: Path
    status: str
    error: Optional[str]
    overrides: List[str]
    finished_at: str


ATTEMPTS_DIR = "attempts"


def is_run_folder(path: Path) -> bool:
    return (path / RESULTS_FILE).is_file() or (path / ".hydra").is_dir() or (path / ATTEMPTS_DIR).is_dir()


def find_runs(root: Path) -> List[Run]:
    """Every run at or below `root`, in the order their sweeps ran them."""
    root = Path(root)
    if is_run_folder(root):
        return [read_run(root)]
    runs = []
    for folder, subfolders, _ in os.walk(root):
        here = Path(folder)
        if here != root and is_run_folder(here):
            runs.append(read_run(here))
            subfolders.clear()  # a run's checkpoints/ and .hydra/ hold no runs
            continue
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    return sorted(runs, key=lambda r: r.order)


def read_run(path: Path) -> Run:
    results, status, error = None, "unfinished", None
    results_file = path / RESULTS_FILE
    attempts = read_attempts(path)
    if results_file.is_file():
        results, error = read_json_object(results_file)
        if results is None:
            status = "unreadable"
        else:
            status = str(results.get("status", "completed"))
            error = results.get("error")
            error = None if error is None else str(error)
    elif attempts:  # only failed attempts so far: the latest says what became of the run
        status, error = attempts[-1].status, attempts[-1].error
    elif (path / "checkpoints" / "last.pt").is_file():
        error = "no results.json yet: still running, or stopped after a checkpoint (resume=true continues it)"
    else:
        error = "no results.json: still running, or stopped before the first epoch ended"
    legacy = results is not None and status == "completed" and "monitor" not in results
    if results is not None:
        results = complete_results(results)
    listed = (results or {}).get("overrides")
    if not isinstance(listed, list):
        listed = _read_yaml(path / ".hydra" / "overrides.yaml")
    if not isinstance(listed, list) and attempts:
        listed = attempts[-1].overrides
    if not isinstance(listed, list):
        listed = []
    hydra = _read_yaml(path / ".hydra" / "hydra.yaml") or {}
    job_num = ((hydra.get("hydra") or {}).get("job") or {}).get("num")
    order = (str(path.parent), job_num if isinstance(job_num, int) else -1, path.name)
    return Run(path=path, overrides=parse_overrides(listed), results=results, status=status,
               error=error, attempts=attempts, legacy=legacy, order=order)


def read_json_object(path: Path) -> Tuple[Optional[dict], Optional[str]]:
    """(the object, None), or (None, what is wrong with the file, in words)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        return None, f"{path.name} could not be read ({exc.strerror or exc}); check its permissions"
    except UnicodeDecodeError:
        return None, f"{path.name} is not text, so not a file cnnlab wrote; remove it or restore it from a backup"
    except ValueError as exc:  # json.JSONDecodeError
        return None, (f"{path.name} is not valid JSON ({exc}); it was cut short or edited by hand: restore it, "
                      "or remove it to report the run as unfinished")
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
                type(None): "null"}.get(type(data), type(data).__name__)
        return None, (f"{path.name} holds {kind}, where cnnlab writes an object of named metrics; it was not "
                      "written by cnnlab or was edited: restore it, or remove it to report the run as unfinished")
    return data, None


def read_attempts(path: Path) -> List[Attempt]:
    """attempts/*.json, oldest first; a record that cannot be read is listed as such."""
    folder = path / ATTEMPTS_DIR
    if not folder.is_dir():
        return []
    attempts = []
    for file in sorted(folder.glob("*.json")):
        data, problem = read_json_object(file)
        if data is None:
            attempts.append(Attempt(file, "unreadable", problem, [], ""))
            continue
        overrides = data.get("overrides")
        attempts.append(Attempt(file, str(data.get("status", "failed")),
                                None if data.get("error") is None else str(data["error"]),
                                [str(o) for o in overrides] if isinstance(overrides, list) else [],
                                str(data.get("finished_at") or "")))
    return sorted(attempts, key=lambda a: (a.finished_at, a.path.name))


def complete_results(results: dict) -> dict:
    """A copy with the keys newer runs record filled in for older ones, as those runs meant them."""
    results = dict(results)
    history = results.get("history")
    history = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    results["history"] = history
    if "monitor" not in results and results.get("status", "completed") == "completed":
        # before trainer.monitor, best_epoch was the epoch of highest val/acc and best_val_loss the lowest
        # val/loss of any epoch: take the loss of the best epoch itself, where the history has it
        results["monitor"] = "val/acc"
        at_best = [h for h in history if h.get("epoch") == results.get("best_epoch")]
        if at_best and "val/loss" in at_best[0]:
            results["best_val_loss"] = at_best[0]["val/loss"]
        results.setdefault("max_val_acc", results.get("best_val_acc"))
    if "max_val_acc" not in results:
        accs = [h["val/acc"] for h in history if isinstance(h.get("val/acc"), (int, float))]
        results["max_val_acc"] = max(accs) if accs else None
    results.setdefault("test_split", "test")
    results.setdefault("val_from_test", False)
    return results


def parse_overrides(items: List[str]) -> Dict[str, str]:
    """["optim=sgd", "+x=1", "hydra.run.dir=..."] -> {"optim": "sgd", "x": "1"}; hydra's own keys dropped."""
    parsed = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.lstrip("+~")
        if sep and not key.startswith("hydra."):
            parsed[key] = value
    return parsed


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
