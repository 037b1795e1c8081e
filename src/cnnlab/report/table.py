"""report.md: the table of configurations, the comparison lines, the runs that did not finish, the figures."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from cnnlab.report.collect import Run
from cnnlab.report.group import Configuration, Stat

REPORT_FILE = "report.md"
DASH = "–"


def _pct(s: Stat) -> str:
    return f"{100 * s.mean:.2f}" + (f" ± {100 * s.std:.2f}" if s.std is not None else "")


def _gap(s: Stat) -> str:
    return f"{100 * s.mean:+.2f}" + (f" ± {100 * s.std:.2f}" if s.std is not None else "")


def _loss(s: Stat) -> str:
    return f"{s.mean:.3f}" + (f" ± {s.std:.3f}" if s.std is not None else "")


def _count(s: Stat) -> str:
    return f"{round(s.mean):,}" if not s.std else f"{s.mean:,.0f} ± {s.std:,.0f}"


def _epoch(s: Stat) -> str:
    return f"{s.mean:.0f}" if not s.std else f"{s.mean:.1f} ± {s.std:.1f}"


def _seconds(s: Stat) -> str:
    return f"{s.mean:.1f}" + (f" ± {s.std:.1f}" if s.std is not None else "")


# header, metric, formatter; top-5 is left out when no run has it (five classes or fewer)
COLUMNS: List[tuple] = [
    ("params", "params", _count),
    ("trainable", "trainable_params", _count),
    ("best val acc (%)", "best_val_acc", _pct),
    ("best epoch", "best_epoch", _epoch),
    ("final train acc (%)", "final_train_acc", _pct),
    ("train−val gap (points)", "gap", _gap),
    ("best val loss", "best_val_loss", _loss),  # final above best: the validation loss turned up (overfitting)
    ("final val loss", "final_val_loss", _loss),
    ("test acc (%)", "test_acc", _pct),
    ("test top-5 (%)", "test_top5_acc", _pct),
    ("train time (s)", "train_seconds", _seconds),
]


def runs_cell(config: Configuration) -> str:
    """`3`, or what became of the runs that did not complete: `2 of 3 (1 failed)`, `unfinished`."""
    done, total = len(config.completed), len(config.runs)
    statuses: Dict[str, int] = {}
    for run in config.not_completed:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    if not statuses:
        return str(total)
    if done == 0 and len(statuses) == 1 and total == 1:
        return f"**{next(iter(statuses))}**"
    what = ", ".join(f"{n} {status}" for status, n in statuses.items())
    return f"{done} of {total} ({what})"


def format_table(configs: List[Configuration]) -> List[str]:
    columns = [c for c in COLUMNS if c[1] != "test_top5_acc" or any(g.stat(c[1]) for g in configs)]
    header = ["configuration", "runs"] + [c[0] for c in columns]
    lines = [_row(header), _row(["---"] * len(header))]
    for config in configs:
        cells = [f"`{config.label}`", runs_cell(config)]
        for _, metric, fmt in columns:
            stat = config.stat(metric)
            cells.append(fmt(stat) if stat else DASH)
        lines.append(_row(cells))
    return lines


def _row(cells: List[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def problem_lines(runs: List[Run], root: Path) -> List[str]:
    return [f"- `{_relative(r.path, root)}`: **{r.status}**" + (f": {r.error}" if r.error else "")
            for r in runs if not r.completed]


def write_markdown(root: Path, runs: List[Run], configs: List[Configuration], comparisons: List[str],
                   figures: Dict[str, Optional[Path]], command: str, sections: Sequence[str] = ()) -> Path:
    """figures: configuration label -> its curves PNG, and "" -> the overlay of validation curves;
    sections: further markdown lines, put after the figures."""
    done = sum(r.completed for r in runs)
    text = [f"# Report: {root.name}", "",
            f"{len(runs)} run{'s' if len(runs) != 1 else ''} in `{root}` ({done} completed), "
            f"{len(configs)} configuration{'s' if len(configs) != 1 else ''}. A configuration is the set of "
            "overrides that differ between runs; runs that differ only in `seed` are one configuration, "
            "shown as mean ± std over its completed runs (sample std; a single run has no ±). The gap is "
            "final train minus final validation accuracy.", ""]
    text += format_table(configs) + [""]
    if comparisons:
        text += ["## Comparisons", ""] + [f"- {line}" for line in comparisons] + [""]
    problems = problem_lines(runs, root)
    if problems:
        text += ["## Runs that did not complete", ""] + problems + [""]
    if any(figures.values()):
        text += ["## Figures", ""]
        overlay = figures.get("")
        if overlay:
            text += [f"![validation curves of every configuration]({_relative(overlay, root)})", ""]
        for config in configs:
            path = figures.get(config.label)
            if path:
                text += [f"### {config.label}", "", f"![{config.label}]({_relative(path, root)})", ""]
    text += list(sections)
    text += [f"Made by `{command}`.", ""]
    path = root / REPORT_FILE
    path.write_text("\n".join(text))
    return path


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)
