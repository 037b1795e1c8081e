"""The `cnnlab-report SWEEP_DIR` command: report.md and figures/ written into the sweep's folder."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from cnnlab.report.activations import activation_section
from cnnlab.report.collect import find_runs
from cnnlab.report.compare import comparison_lines
from cnnlab.report.figures import draw_figures
from cnnlab.report.group import group_runs
from cnnlab.report.table import format_table, write_markdown


class ReportError(Exception):
    """Input the report cannot use; the message says what to give instead."""


def make_report(root: Path, figures: bool = True) -> Path:
    root = Path(root)
    if not root.exists():
        raise ReportError(f"{root} does not exist. Give the folder of a sweep (outputs/multirun/DATE/TIME, or "
                          "hydra.sweep.dir) or of a single run (outputs/DATE/TIME).")
    if not root.is_dir():
        raise ReportError(f"{root} is a file, not a folder. Give the folder of a sweep or of a single run.")
    runs = find_runs(root)
    if not runs:
        raise ReportError(f"found no runs in {root}: a run folder holds results.json or .hydra/, and none "
                          "was found at or below it. Give the folder `cnnlab -m ...` printed (its jobs are "
                          "its subfolders) or the folder of one run.")
    configs = group_runs(runs)
    comparisons = comparison_lines(configs)
    drawn = draw_figures(root, configs) if figures else {}
    activations = activation_section(root, configs, draw=figures)  # init_activation's histograms, if any
    command = "cnnlab-report " + str(root)
    path = write_markdown(root, runs, configs, comparisons, drawn, command, activations)
    print("\n".join(format_table(configs)))
    for line in comparisons:
        print("- " + line.replace("**", ""))
    failed = sum(not r.completed for r in runs)
    if failed:
        print(f"{failed} of {len(runs)} runs did not complete; report.md lists them.")
    print(f"Wrote {path}" + (f" and {len(drawn)} figures in {root / 'figures'}" if drawn else "") + ".")
    return path


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cnnlab-report",
        description="Summarise a sweep: a table of configurations (runs differing only in seed grouped as "
                    "mean ± std), which one won and by how much, and training/validation curves. Writes "
                    "report.md and figures/ into SWEEP_DIR.")
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", type=Path,
                        help="a sweep folder (outputs/multirun/DATE/TIME), a folder of sweeps, or one run")
    parser.add_argument("--no-figures", action="store_true", help="write only report.md")
    args = parser.parse_args(argv)
    try:
        make_report(args.sweep_dir, figures=not args.no_figures)
    except ReportError as exc:
        print(f"cnnlab-report: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"cnnlab-report: error: could not write the report into {args.sweep_dir}: "
              f"{exc.strerror or exc}. Check the folder is writable.", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("cnnlab-report: interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
