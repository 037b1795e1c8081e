"""report.md: the table of configurations, the comparison lines, the runs that did not finish, the figures."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from cnnlab.atomic import write_text
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
    ("best val acc (%)", "best_val_acc", _pct),  # the selection metric: from the monitored best epoch
    ("max val acc (%)", "max_val_acc", _pct),  # the highest of any epoch; shown where it differs
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


VAL_AS_TEST = "†"  # a run whose data has no test split: its "test" figures are validation figures
SELECTED_ON_TEST = "‡"  # a run that validated on the test split (dataset.val_from_test=true)


def _completed_results(configs: List[Configuration]) -> List[dict]:
    return [r.results for c in configs for r in c.completed if r.results]


def monitors(configs: List[Configuration]) -> List[str]:
    """The trainer.monitor values of the completed runs, in order of first appearance."""
    return list(dict.fromkeys(str(r.get("monitor")) for r in _completed_results(configs) if r.get("monitor")))


def test_split_is_val(configs: List[Configuration]) -> str:
    """"all", "some" or "none" of the completed runs with test figures measured them on validation."""
    splits = [r.get("test_split") for r in _completed_results(configs) if r.get("test_acc") is not None]
    vals = sum(s == "val" for s in splits)
    return "none" if not vals else "all" if vals == len(splits) else "some"


def _marks(config: Configuration, mixed: bool) -> str:
    results = [r.results for r in config.completed if r.results]
    marks = ""
    if mixed and any(r.get("test_split") == "val" for r in results):
        marks += " " + VAL_AS_TEST
    if any(r.get("val_from_test") is True for r in results):
        marks += " " + SELECTED_ON_TEST
    return marks


def _header(title: str, metric: str, configs: List[Configuration]) -> str:
    if metric == "best_epoch":
        found = monitors(configs)
        if not found:
            return title
        return f"{title} (by {found[0]})" if len(found) == 1 else f"{title} (by each run's monitor)"
    if metric in ("test_acc", "test_top5_acc") and test_split_is_val(configs) == "all":
        return title.replace("test ", "val-as-test ")
    return title


def _shown(metric: str, configs: List[Configuration]) -> bool:
    if metric == "test_top5_acc":
        return any(g.stat(metric) for g in configs)
    if metric == "max_val_acc":  # only where it tells something the best column does not
        return any(r.get("max_val_acc") is not None and r.get("max_val_acc") != r.get("best_val_acc")
                   for r in _completed_results(configs))
    return True


def format_table(configs: List[Configuration]) -> List[str]:
    columns = [c for c in COLUMNS if _shown(c[1], configs)]
    header = ["configuration", "runs"] + [_header(c[0], c[1], configs) for c in columns]
    lines = [_row(header), _row(["---"] * len(header))]
    mixed = test_split_is_val(configs) == "some"
    for config in configs:
        cells = [f"`{config.label}`{_marks(config, mixed)}", runs_cell(config)]
        for _, metric, fmt in columns:
            stat = config.stat(metric)
            cells.append(fmt(stat) if stat else DASH)
        lines.append(_row(cells))
    return lines


def _row(cells: List[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def table_notes(configs: List[Configuration], runs: List[Run]) -> List[str]:
    """What the "best" and "test" columns mean for these runs, and what the marks say."""
    found = monitors(configs)
    monitor = f"`{found[0]}`" if len(found) == 1 else "each run's own"
    legacy = [r for r in runs if r.legacy]
    notes = []
    if len(legacy) < sum(r.completed for r in runs):
        notes.append(f"Best: the epoch that `trainer.monitor` ({monitor}) chose, whose weights `checkpoints/best.pt` "
                     "holds; best val acc (what every comparison below is decided on) and best val loss are both "
                     "from that epoch" + ("; max val acc is the highest of any epoch."
                                          if _shown("max_val_acc", configs) else "."))
    if legacy:
        notes.append(f"{'These runs were' if len(notes) == 0 else 'Some runs were'} written before results.json "
                     "recorded the monitor: their best epoch is the one of highest val acc (what every comparison "
                     "below is decided on), their best val loss is read from that epoch's history, and their "
                     "`checkpoints/best.pt` followed `trainer.early_stopping.monitor`, so it may hold another epoch.")
    split = test_split_is_val(configs)
    if split == "all":
        notes.append("These runs' data has no test split (results.json `test_split: \"val\"`): the val-as-test "
                     "columns are measured on the validation images that also chose the best epoch, so they "
                     "are not held-out estimates.")
    elif split == "some":
        notes.append(f"{VAL_AS_TEST} no test split (results.json `test_split: \"val\"`): this configuration's "
                     "test columns are measured on its validation images, not held-out ones.")
    if any(_marks(c, False) for c in configs):
        notes.append(f"{SELECTED_ON_TEST} validated on the test split (`dataset.val_from_test=true`): its best "
                     "epoch and early stopping were chosen on the test images, so its test figures are optimistic.")
    return notes


def problem_lines(runs: List[Run], root: Path) -> List[str]:
    return [f"- `{_relative(r.path, root)}`: **{r.status}**" + (f": {r.error}" if r.error else "")
            for r in runs if not r.completed]


def attempt_lines(runs: List[Run], root: Path) -> List[str]:
    """Failed or interrupted attempts recorded beside a run (attempts/*.json), oldest first."""
    lines = []
    for run in runs:
        for attempt in run.attempts:
            when = f" at {attempt.finished_at}" if attempt.finished_at else ""
            typed = f" (`{' '.join(attempt.overrides)}`)" if attempt.overrides else ""
            lines.append(f"- `{_relative(attempt.path, root)}`: **{attempt.status}**{when}{typed}"
                         + (f": {attempt.error}" if attempt.error else ""))
    return lines


def write_markdown(root: Path, runs: List[Run], configs: List[Configuration], comparisons: List[str],
                   figures: Dict[str, Optional[Path]], command: str, sections: Sequence[str] = (),
                   sources: Sequence[Path] = ()) -> Path:
    """root: the folder report.md goes into; sources: the folders the runs were found in (default root);
    figures: configuration label -> its curves PNG, and "" -> the overlay of validation curves;
    sections: further markdown lines, put after the figures."""
    sources = list(sources) or [root]
    done = sum(r.completed for r in runs)
    where = ", ".join(f"`{s}`" for s in sources)
    title = ", ".join(Path(s).name or str(s) for s in sources)
    text = [f"# Report: {title}", "",
            f"{len(runs)} run{'s' if len(runs) != 1 else ''} in {where} ({done} completed), "
            f"{len(configs)} configuration{'s' if len(configs) != 1 else ''}. A configuration is the set of "
            "overrides that differ between runs; runs that differ only in `seed` are one configuration, "
            "shown as mean ± std over its completed runs (sample std; a single run has no ±). The gap is "
            "final train minus final validation accuracy. Every run, with every override and metric, is "
            "one row of `report.csv`.", ""]
    text += format_table(configs) + [""]
    text += table_notes(configs, runs) + [""]
    attempts = attempt_lines(runs, root)
    if attempts:
        text += ["Failed attempts, recorded beside their runs (a completed result above is never replaced "
                 "by a later failed attempt):", ""] + attempts + [""]
    if comparisons:
        text += ["## Comparisons", "", COMPARISONS_NOTE, ""] + [f"- {line}" for line in comparisons] + [""]
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
    return write_text(root / REPORT_FILE, "\n".join(text))


COMPARISONS_NOTE = (
    "Decided on best validation accuracy, never on test. Each line is Welch's t-test over the seeds of the "
    "two configurations: the mean difference with its 95% confidence interval and the p-value, Holm-corrected "
    "over all the comparisons of this report. Where a difference is not significant, the seeds per "
    "configuration that would find a true difference of that size 80% of the time.")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return os.path.abspath(path)  # a run outside the report's folder (--out elsewhere): named in full
