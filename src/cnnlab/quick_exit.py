"""A process that has loaded torch leaves in a fraction of the time.

At interpreter shutdown Python's collector walks every tracked object, several times, looking for
cycles to free: with torch, TensorBoard and matplotlib loaded that is ~0.5 s spent after the last
line was printed (docs/benchmarks.md, Sweeps: "Exit"), in every command and in every worker of a
local sweep, whose main process waits for them. Freezing the objects once the exit handlers start
skips those walks. Objects are still freed by reference counting as modules are cleared; only
cycles among them are left to the operating system, and every file cnnlab writes is closed (and
written atomically) long before exit.
"""
from __future__ import annotations

import atexit
import gc

_installed = False


def install() -> None:
    """Freeze the collector's objects at exit, in this process. Registered once; idempotent."""
    global _installed
    if not _installed:
        atexit.register(gc.freeze)
        _installed = True
