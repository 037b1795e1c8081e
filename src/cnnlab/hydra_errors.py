"""Hydra's own errors (an unknown preset, a value of the wrong type, a bad flag) as cnnlab's: one
paragraph on stderr and exit code 2, the code for a mistake in the input.

Hydra reports every error through `hydra._internal.utils.run_and_report`, which prints a
traceback or Hydra's multi-line text and exits 1. While `input_errors()` is active that function is
replaced: an exception raised by the task itself (a bug, marked by `mark_task_error`) still goes to
Hydra's report, everything else happened while Hydra read the command line and the configs.
"""
from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator

TASK_MARK = "_cnnlab_in_task"


class HydraInputError(Exception):
    """What Hydra refused, as one paragraph."""


def mark_task_error(exc: BaseException) -> None:
    """Called by the task function for an exception it lets through: that is a failure, not input."""
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, TASK_MARK, True)


def describe(exc: BaseException) -> str:
    """Hydra's message in one paragraph: no search path, options listed on one line."""
    text = str(exc).split("\nConfig search path:")[0].strip()
    merging = re.match(r"Error merging override (.+)", text)
    cause = exc.__cause__
    if merging and cause is not None:
        reason = str(cause).splitlines()[0].strip().rstrip(".")
        return (f"bad value in '{merging.group(1)}': {reason}. `cnnlab --cfg job` prints every setting with its "
                "current value; nothing was run.")
    missing = re.search(r"Could not find '([^/']+)/([^']*)'", text)
    if missing:
        group, option = missing.groups()
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        listed = f" The options for {group}= are: {', '.join(options)}." if options else ""
        return f"there is no {group} preset '{option}' (from '{group}={option}').{listed} Nothing was run."
    if "Expecting one subcommand" in text:  # a bare --shell-completion
        return (f"{text.rstrip('.')}: give --shell-completion install=bash (or zsh, fish), e.g. "
                '`eval "$(cnnlab --shell-completion install=bash)"` in ~/.bashrc, as Hydra documents.')
    text = re.sub(r"\n\t", ", ", text)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if cause is not None and str(cause):
        text += f" ({str(cause).splitlines()[0].strip()})"
    return text.rstrip(".") + "."


@contextlib.contextmanager
def input_errors() -> Iterator[None]:
    """Within this block Hydra's input errors raise HydraInputError instead of exiting 1."""
    from hydra._internal import utils

    original = utils.run_and_report

    def run_and_report(func):
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - sorted below into input errors and task failures
            if getattr(exc, TASK_MARK, False) or os.environ.get("HYDRA_FULL_ERROR") == "1":
                return original(_raiser(exc))  # Hydra's report: the traceback, exit code 1
            raise HydraInputError(describe(exc)) from exc

    utils.run_and_report = run_and_report
    try:
        yield
    except HydraInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - raised by Hydra's flag handling outside run_and_report
        if getattr(exc, TASK_MARK, False) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise HydraInputError(describe(exc)) from exc
    finally:
        utils.run_and_report = original


def _raiser(exc: BaseException):
    def again():
        raise exc
    return again
