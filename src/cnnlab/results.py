"""results.json: a run's final metrics in one small file a script or a report can read."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from cnnlab.errors import TrainingError, write_failure

RESULTS_FILE = "results.json"


def write_results(run_dir: Path, results: dict) -> Path:
    """Write atomically so a reader never sees half a file."""
    path = run_dir / RESULTS_FILE
    tmp = path.with_name(f".{RESULTS_FILE}.tmp")
    try:
        tmp.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"could not write {path}: {write_failure(exc)}. Checkpoints written before "
                            "are intact.") from None
    return path


def read_results(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def _json_safe(value):
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
