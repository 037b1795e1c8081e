"""Readable sweep folder names: the overrides that differ between jobs, e.g. `optim=sgd,model.dropout=0.5`.

TensorBoard names each run after its folder, so these names are what a user sees in the legend.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Optional

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+\-]")


def swept_keys(argv: Iterable[str], sweeper_params: dict | None) -> set[str]:
    """Keys that take more than one value in this sweep: `a=1,2`, `range(...)`, `choice(...)`, presets."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    candidates = [a for a in argv if "=" in a and not a.startswith("-")]
    keys = set()
    try:
        for override in OverridesParser.create().parse_overrides(candidates):
            if override.is_sweep_override():
                keys.add(override.get_key_element().lstrip("+~"))
    except Exception:  # noqa: BLE001 - naming must never stop a sweep; fall back to the job number
        pass
    keys.update(str(k) for k in (sweeper_params or {}))
    return keys


def run_name(job_num, overrides=None, sweeper_params=None) -> str:
    """`${cnnlab_run_name:${hydra.job.num}}`: swept overrides of this job, or its number."""
    from hydra.core.hydra_config import HydraConfig

    try:
        hydra_cfg = HydraConfig.get()
        overrides = list(hydra_cfg.overrides.task)
        sweeper_params = hydra_cfg.sweeper.get("params")
    except ValueError:  # no Hydra context (e.g. a unit test calling this directly)
        overrides, sweeper_params = list(overrides or []), sweeper_params
    # a SLURM or submitit job runs under submitit's argv: the sweep's main process passes its own on
    argv = os.environ.get("CNNLAB_SWEEP_ARGV")
    keys = swept_keys(json.loads(argv) if argv else sys.argv[1:], sweeper_params)
    parts = [o.lstrip("+~") for o in overrides if o.partition("=")[0].lstrip("+~") in keys]
    if not parts:
        return str(job_num)
    return _UNSAFE.sub("_", ",".join(parts))[:200]


_claimed: dict = {}  # base -> the folder this process claimed for it


def unique_dir(base: str) -> str:
    """`${cnnlab_unique_dir:outputs/DATE/TIME}`: the folder, or TIME-1, TIME-2, ... if it is taken.

    Claimed with os.mkdir, which fails when the folder exists, so two runs started in the same second
    never share a folder. Under torchrun only rank 0 claims; the others receive its folder.
    """
    if base in _claimed:
        return _claimed[base]
    from cnnlab.train import distributed  # no torch import unless torchrun started this process

    claimed = distributed.share_from_rank0(lambda: _claim(base))
    _claimed[base] = claimed
    return claimed


def release_unused(run_dir: Optional[Path]) -> None:
    """Remove the empty folders this process claimed but does not run in.

    A preset that sets hydra.run.dir (experiment=finetune_pretrain) replaces the dated default, but
    OmegaConf resolves the value it replaces while merging, and resolving it claims the folder. Only
    empty folders go (rmdir refuses others), with their date folder if that is left empty; the names
    stay claimed, so resolving the default again cannot make another.
    """
    keep = Path(run_dir).resolve() if run_dir is not None else None  # None: a compose with no job
    for claimed in _claimed.values():
        path = Path(claimed).resolve()
        if keep is not None and (path == keep or path in keep.parents):
            continue  # the run's folder, or the sweep's around it
        for folder in (path, path.parent):
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                break


def _claim(base: str) -> str:
    try:
        Path(base).parent.mkdir(parents=True, exist_ok=True)
        for k in range(10_000):
            candidate = base if k == 0 else f"{base}-{k}"
            try:
                os.mkdir(candidate)
                return candidate
            except FileExistsError:
                continue
    except OSError:
        pass  # not writable: Hydra's own mkdir reports it
    return base
