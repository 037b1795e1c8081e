"""Processes that loaded torch leave without the collector's walks at exit (src/cnnlab/quick_exit.py):
~0.4 s sooner for a run, ~0.5-0.9 s for a sweep, whose main process waits for its workers. What a
job writes is written and closed before then; the other tests check those files."""
from __future__ import annotations

import subprocess
import sys

import pytest


def test_quick_exit_freezes_the_collector_once_the_exit_handlers_run():
    code = ("import atexit, gc; from cnnlab import quick_exit; before = atexit._ncallbacks(); "
            "quick_exit.install(); quick_exit.install(); assert atexit._ncallbacks() == before + 1; "
            "assert gc.get_freeze_count() == 0; atexit._run_exitfuncs(); print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 1000  # every object alive at exit, out of the collector's reach


@pytest.mark.parametrize("entry, argv", [("cnnlab.cli", ["--version"]), ("cnnlab.report.cli", ["--help"]),
                                         ("cnnlab.predict", ["--help"]), ("cnnlab.lrfind", ["--help"])])
def test_every_console_script_installs_it(entry, argv):
    """Each command's main (and each job, a sweep's workers too, through the task function)."""
    code = (f"import sys, {entry} as m, cnnlab.quick_exit as q; sys.argv = ['x', *{argv!r}]\n"
            "try:\n    m.main()\nexcept SystemExit:\n    pass\nprint('installed', q._installed)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-2:] == ["installed", "True"], out.stderr[-2000:]
