"""results.json: a run's final metrics in one small file a script or a report can read."""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from cnnlab import atomic
from cnnlab.errors import TrainingError, write_failure

RESULTS_FILE = "results.json"
ATTEMPTS_DIR = "attempts"  # one record per failed or interrupted attempt, beside results.json


def write_results(run_dir: Path, results: dict) -> Path:
    """Write atomically so a reader never sees half a file."""
    path = run_dir / RESULTS_FILE
    results = {**results, "finished_at": results.get("finished_at") or _now()}
    try:
        atomic.write_text(path, json.dumps(_json_safe(results), indent=2) + "\n", durable=True)
    except OSError as exc:
        raise TrainingError(f"could not write {path}: {write_failure(exc)}. Checkpoints written before "
                            "are intact.") from None
    return path


def read_results(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def best_summary(history: List[dict], monitor: str, best_epoch: int) -> dict:
    """The best epoch is the one trainer.monitor picked (best.pt holds it); best_val_* are both from it.

    max_val_acc and min_val_loss are the extremes over all epochs, which may come from other epochs."""
    row = next((r for r in history if r["epoch"] == best_epoch), None)
    return {
        "monitor": monitor,
        "best_epoch": row["epoch"] if row else None,
        "best_val_loss": row["val/loss"] if row else None,
        "best_val_acc": row["val/acc"] if row else None,
        "max_val_acc": max(r["val/acc"] for r in history) if history else None,
        "min_val_loss": min(r["val/loss"] for r in history) if history else None,
    }


def objective_value(results: dict) -> float:
    """What a sweeper optimizes: the monitored metric at the best epoch (NaN where no epoch ran, which
    Optuna records as a failed trial). Minimize it for val/loss, maximize it for val/acc."""
    value = results.get("best_val_loss" if results.get("monitor", "val/loss") == "val/loss" else "best_val_acc")
    return math.nan if value is None else float(value)
def write_attempt(run_dir: Path, record: dict) -> Path:
    """attempts/<UTC time>-<pid>.json: one failed or interrupted attempt, never written over another.

    `record` holds `status` ("failed" / "interrupted"), `error`, `exit_code` and `overrides`;
    `finished_at` is added. Raises OSError when the folder is not writable.
    """
    folder = Path(run_dir) / ATTEMPTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    record = {**record, "finished_at": record.get("finished_at") or now.isoformat(timespec="microseconds")}
    path = folder / f"{now:%Y%m%dT%H%M%S}-{os.getpid()}.json"
    for k in range(1, 1000):  # a sweep job that fails twice in one second keeps both records
        if not path.exists():
            break
        path = folder / f"{now:%Y%m%dT%H%M%S}-{os.getpid()}-{k}.json"
    return atomic.write_text(path, json.dumps(_json_safe(record), indent=2) + "\n")


def latest_attempt(run_dir: Path) -> Optional[dict]:
    """The newest record of this folder (results.json or attempts/*.json, by `finished_at`), else None.

    Unreadable files are skipped; a results.json written before `finished_at` existed counts as oldest.
    """
    run_dir = Path(run_dir)
    candidates = [run_dir / RESULTS_FILE, *sorted((run_dir / ATTEMPTS_DIR).glob("*.json"))]
    best, best_time = None, None
    for path in candidates:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        when = str(record.get("finished_at") or "")
        if best is None or when >= best_time:
            best, best_time = record, when
    return best


def has_completed_results(run_dir: Path) -> bool:
    """True when results.json holds a completed run (the record no later attempt may replace)."""
    try:
        record = read_results(run_dir)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("status", "completed") == "completed"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _json_safe(value):
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
