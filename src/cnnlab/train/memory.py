"""`trainer.keep_freed_memory`: freed CPU memory stays in the process instead of going back to the OS.

glibc's malloc hands blocks over its mmap threshold (128 KiB, sliding up to 32 MiB) straight to the
kernel on free, and trims the heap's free top above twice that. A CPU training step allocates and frees
the same activation buffers every batch, so each batch page-faults and zero-fills its memory anew:
report_cnn's 32 images of 1x128x128 (65 MB of feature maps per layer) spend about half of an evaluation
pass there (docs/benchmarks.md). With both thresholds at 1 GiB the buffers are reused from the heap:
the same arithmetic bit for bit, without the faults. The cost is resident memory: the process keeps
its peak, and a little more while the heap settles (a freed buffer among small allocations can leave a
hole just too small for the next one; a report_cnn job peaked at 2.0 GiB instead of 1.7 GiB). Only
glibc (Linux) has these knobs; elsewhere the setting does nothing.
"""
from __future__ import annotations

import ctypes
import os
from typing import Optional

M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
KEPT_BYTES = 1 << 30
GLIBC_DEFAULT_BYTES = 128 * 1024  # both thresholds' static defaults

_kept = False


def _libc() -> Optional[ctypes.CDLL]:
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        libc = ctypes.CDLL(None)
    except (AttributeError, OSError, ValueError):  # no os.confstr (Windows) or no such name (macOS)
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def freed_memory_kept() -> bool:
    return _kept


def keep_freed_memory(enabled: bool) -> bool:
    """Keep (or stop keeping) freed memory in this process; returns whether it is kept now.

    Process-wide, like the thread count: a later job of the same process that sets it false gets glibc's
    static defaults back (glibc's sliding threshold stays off once a program has set one), and what
    was kept goes back to the OS."""
    global _kept
    libc = _libc()
    if libc is None:
        return False
    if enabled and not _kept:
        _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
    elif not enabled and _kept:
        libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_BYTES)
        libc.malloc_trim(0)  # the free blocks kept so far go back to the OS too, not only later ones
        _kept = False
    return _kept
