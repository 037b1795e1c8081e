"""A local sweep's worker does not walk, after every job, the objects that live as long as it does.

Where psutil is not installed, joblib's worker processes call `gc.collect()` after each job (their
check for leaked memory). With torch, TensorBoard and cnnlab loaded that walks ~200,000 objects,
~0.1 s of a core per job (docs/benchmarks.md, Sweeps), in sweeps whose jobs train for under a second.
After a worker's first job everything its later jobs use is loaded: it collects once, then freezes
what is left, so each later collection walks only the objects of the job before. Cycles among the
frozen objects (the first job's config, a few hundred kB) are never freed, once per worker.
"""
from __future__ import annotations

import gc

_settled = False


def settle_after_first_job() -> None:
    """Collect once and freeze what survives, the first time it is called in this process."""
    global _settled
    if not _settled:
        gc.collect()
        gc.freeze()
        _settled = True
