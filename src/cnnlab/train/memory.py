"""`trainer.keep_freed_memory`: freed CPU memory stays in the process instead of going back to the OS.

glibc's malloc hands blocks over its mmap threshold (128 KiB, sliding up to 32 MiB) straight to the
kernel on free, and trims the heap's free top above twice that. A CPU training step allocates and frees
the same activation buffers every batch, so each batch page-faults and zero-fills its memory anew:
report_cnn's 32 images of 1x128x128 (65 MB of feature maps per layer) spend about half of an evaluation
pass there (docs/benchmarks.md). With both thresholds at 1 GiB the buffers are reused from the heap:
the same arithmetic bit for bit, without the faults. The cost is a process whose resident memory stays
at its peak. Only glibc (Linux) has these knobs; elsewhere the setting does nothing.
"""
from __future__ import annotations

import ctypes
import os
from typing import Callable, Optional

M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
KEPT_BYTES = 1 << 30
GLIBC_DEFAULT_BYTES = 128 * 1024  # both thresholds' static defaults

_kept = False


def _mallopt() -> Optional[Callable[[int, int], int]]:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        return ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):  # no confstr name (macOS, Windows) or no mallopt
        return None


def freed_memory_kept() -> bool:
    return _kept


def keep_freed_memory(enabled: bool) -> bool:
    """Keep (or stop keeping) freed memory in this process; returns whether it is kept now.

    Process-wide, like the thread count: a later job of the same process that sets it false gets glibc's
    static defaults back (glibc's sliding threshold stays off once a program has set one)."""
    global _kept
    mallopt = _mallopt()
    if mallopt is None:
        return False
    if enabled and not _kept:
        _kept = bool(mallopt(M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
    elif not enabled and _kept:
        mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_BYTES)
        mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_BYTES)
        _kept = False
    return _kept
