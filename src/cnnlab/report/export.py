"""report.csv: one row per run with every override and every metric, for a spreadsheet or pandas.

Overrides come first, as typed (`optim`, `model.dropout`, `seed`); then each results.json key in the
order the runs list them. A dict of numbers (`per_class_acc`) becomes one column per entry
(`per_class_acc/cat`), a list (`most_confused`) one JSON cell; the per-epoch history stays in
results.json.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Dict, List

from cnnlab.atomic import write_text
from cnnlab.report.collect import Run
from cnnlab.report.group import Configuration

CSV_FILE = "report.csv"
SKIPPED = {"history", "overrides", "status", "error"}  # history is per epoch; the others have columns of their own


def run_row(run: Run, label: str, root: Path) -> Dict[str, object]:
    row: Dict[str, object] = {"run": _where(run.path, root), "configuration": label, "status": run.status,
                              "error": run.error or "", "failed_attempts": len(run.attempts)}
    row.update(run.overrides)
    for key, value in (run.results or {}).items():
        if key in SKIPPED or key in row:
            continue
        if isinstance(value, dict):
            for sub, inner in value.items():
                row[f"{key}/{sub}"] = _cell(inner)
        else:
            row[key] = _cell(value)
    return row


def write_csv(root: Path, runs: List[Run], configs: List[Configuration]) -> Path:
    labels = {id(r): c.label for c in configs for r in c.runs}
    rows = [run_row(r, labels.get(id(r), ""), root) for r in runs]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(root / CSV_FILE, buffer.getvalue())


def _cell(value) -> object:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else value


def _where(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return os.path.abspath(path)
