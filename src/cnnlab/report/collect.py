"""Find the runs under a folder: a sweep, a sweep of sweeps, or a single run.

A run folder is one that holds results.json (finished or failed) or .hydra/ (started: a folder
with .hydra/ but no results.json is a run that is still going or was killed). Runs are never
dropped for having failed; the report shows them as such.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from cnnlab.results import RESULTS_FILE


@dataclass
class Run:
    path: Path
    overrides: Dict[str, str]  # key -> value as typed on the command line, seed included
    results: Optional[dict]  # None for an unfinished run
    status: str  # completed | failed | interrupted | unfinished | unreadable
    error: Optional[str] = None
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


def is_run_folder(path: Path) -> bool:
    return (path / RESULTS_FILE).is_file() or (path / ".hydra").is_dir()


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
    if results_file.is_file():
        try:
            results = json.loads(results_file.read_text())
            if not isinstance(results, dict):
                raise ValueError(f"it holds a JSON {type(results).__name__}, not cnnlab's object of metrics")
            status = str(results.get("status", "completed"))
            error = results.get("error")
        except (OSError, ValueError) as exc:
            results = None
            status, error = "unreadable", f"{RESULTS_FILE} could not be read: {exc}"
    elif (path / "checkpoints" / "last.pt").is_file():
        error = "no results.json yet: still running, or stopped after a checkpoint (resume=true continues it)"
    else:
        error = "no results.json: still running, or stopped before the first epoch ended"
    listed = (results or {}).get("overrides")
    if listed is None:
        listed = _read_yaml(path / ".hydra" / "overrides.yaml") or []
    hydra = _read_yaml(path / ".hydra" / "hydra.yaml") or {}
    job_num = ((hydra.get("hydra") or {}).get("job") or {}).get("num")
    order = (str(path.parent), job_num if isinstance(job_num, int) else -1, path.name)
    return Run(path=path, overrides=parse_overrides(listed), results=results, status=status,
               error=error, order=order)


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
