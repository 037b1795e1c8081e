"""The `cnnlab-report FOLDER...` command: report.md, report.csv and figures/ for the runs under the folders.

    cnnlab-report outputs/multirun/optimizers                   # written into that folder
    cnnlab-report 'outputs/multirun/2026-11-*' --out reports/nov  # several sweeps (or a glob) into one report
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Union

from cnnlab.report.activations import activation_section
from cnnlab.report.collect import Run, find_runs
from cnnlab.report.compare import comparison_lines
from cnnlab.report.export import write_csv
from cnnlab.report.figures import draw_figures
from cnnlab.report.group import group_runs
from cnnlab.report.per_class import per_class_section
from cnnlab.report.table import format_table, test_split_is_val, write_markdown

GLOB_CHARS = set("*?[")


class ReportError(Exception):
    """Input the report cannot use; the message says what to give instead."""


def expand(patterns: Sequence[Union[str, Path]]) -> List[Path]:
    """The folders named, with any glob the shell left unexpanded (a quoted one) expanded, in order."""
    folders: List[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if GLOB_CHARS & set(text) and not Path(text).exists():
            matches = sorted(glob.glob(os.path.expanduser(text)))
            if not matches:
                raise ReportError(f"nothing matches {text}. Give sweep or run folders, or a pattern such as "
                                  "'outputs/multirun/2026-11-*' that matches some.")
            folders += [Path(m) for m in matches]
        else:
            folders.append(Path(text).expanduser())
    return list(dict.fromkeys(folders))


def collect(folders: Sequence[Path]) -> List[Run]:
    """Every run under the folders, each once, in the order the folders were given."""
    runs, seen = [], set()
    for root in folders:
        if not root.exists():
            raise ReportError(f"{root} does not exist. Give the folder of a sweep (outputs/multirun/DATE/TIME, or "
                              "hydra.sweep.dir) or of a single run (outputs/DATE/TIME).")
        if not root.is_dir():
            raise ReportError(f"{root} is a file, not a folder. Give the folder of a sweep or of a single run.")
        found = find_runs(root)
        if not found:
            raise ReportError(f"found no runs in {root}: a run folder holds results.json or .hydra/, and none "
                              "was found at or below it. Give the folder `cnnlab -m ...` printed (its jobs are "
                              "its subfolders) or the folder of one run.")
        for run in found:
            key = run.path.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(run)
    return runs


def bad_files(runs: List[Run]) -> List[str]:
    """One line per results.json or attempt record that could not be used, saying why."""
    lines = [f"{run.path}: {run.error}" for run in runs if run.status == "unreadable"]
    lines += [f"{a.path}: {a.error}" for run in runs for a in run.attempts if a.status == "unreadable"]
    return lines


def make_report(sources: Union[Path, str, Sequence[Union[Path, str]]], figures: bool = True,
                out: Optional[Path] = None) -> Path:
    """report.md (returned), report.csv and figures/ in `out`: by default the one folder given, else the
    current folder."""
    folders = expand([sources] if isinstance(sources, (str, Path)) else list(sources))
    if not folders:
        raise ReportError("give at least one sweep or run folder.")
    runs = collect(folders)
    problems = bad_files(runs)
    if all(r.status == "unreadable" for r in runs):
        raise ReportError("no run could be read: " + "; ".join(problems) + ".")
    for line in problems:
        print(f"cnnlab-report: warning: {line}", file=sys.stderr)
    out = Path(out) if out is not None else folders[0] if len(folders) == 1 else Path.cwd()
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file; give a folder for report.md, report.csv and figures/.")
    out.mkdir(parents=True, exist_ok=True)
    configs = group_runs(runs)
    beside = "val-as-test accuracy" if test_split_is_val(configs) == "all" else "test accuracy"
    comparisons = comparison_lines(configs, beside)
    drawn = draw_figures(out, configs) if figures else {}
    sections = per_class_section(configs, "validation" if beside != "test accuracy" else "test")
    sections += activation_section(out, configs, draw=figures)  # init_activation's histograms, if any
    command = "cnnlab-report " + " ".join(str(f) for f in folders)
    if out != (folders[0] if len(folders) == 1 else None):
        command += f" --out {out}"
    path = write_markdown(out, runs, configs, comparisons, drawn, command, sections, sources=folders)
    csv_path = write_csv(out, runs, configs)
    print("\n".join(format_table(configs)))
    for line in comparisons:
        print("- " + line.replace("**", ""))
    failed = sum(not r.completed for r in runs)
    if failed:
        print(f"{failed} of {len(runs)} runs did not complete; report.md lists them.")
    attempts = sum(len(r.attempts) for r in runs)
    if attempts:
        print(f"{attempts} failed attempt{'s' if attempts != 1 else ''} recorded beside runs; report.md lists them.")
    print(f"Wrote {path}, {csv_path.name}" + (f" and {len(drawn)} figures in {out / 'figures'}" if drawn else "")
          + ".")
    return path


def main(argv: Optional[List[str]] = None) -> None:
    from cnnlab import quick_exit

    quick_exit.install()  # torch loaded: leave without the collector's walks at exit
    parser = argparse.ArgumentParser(
        prog="cnnlab-report",
        description="Summarise sweeps: a table of configurations (runs differing only in seed grouped as "
                    "mean ± std), which one won on validation accuracy and whether a t-test says so, and "
                    "training/validation curves. Writes report.md, report.csv and figures/.")
    parser.add_argument("folders", metavar="FOLDER", nargs="+",
                        help="sweep folders (outputs/multirun/DATE/TIME), folders of sweeps, run folders, or "
                             "quoted globs of them")
    parser.add_argument("--out", metavar="DIR", type=Path, default=None,
                        help="where report.md, report.csv and figures/ go (default: the folder given, or the "
                             "current folder when several are given)")
    parser.add_argument("--no-figures", action="store_true", help="write only report.md and report.csv")
    args = parser.parse_args(argv)
    target = args.out or (args.folders[0] if len(args.folders) == 1 else Path.cwd())
    try:
        make_report(args.folders, figures=not args.no_figures, out=args.out)
    except ReportError as exc:
        print(f"cnnlab-report: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"cnnlab-report: error: could not write the report into {target}: "
              f"{exc.strerror or exc}. Check the folder is writable.", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("cnnlab-report: interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
