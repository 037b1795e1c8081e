"""Checking a sweep before its first job: one compose per distinct override, not one per job.

Hydra's basic sweeper composes every job's config before launching any (`validate_batch_is_legal`),
so that a bad value fails at once rather than after hours of jobs, and then composes each job again
when it runs. At ~0.2 s a compose that check alone took 8 s for the 40-job optimizers preset, run
in the launching process while the sweep's workers waited. A bad value is bad in every job it
appears in, so composing one job for each override not seen yet (every `optim=...` and every
`seed=...` once: 12 composes for 5 optimizers x 8 seeds) refuses the same typos and out-of-range
values up front. Hydra's compose checks types and presets only; each composed config also goes
through cnnlab's own `validate`, so `optim.lr=-1` is refused before the first job as `optim=sgdd`
is, not by every job in turn. What only a combination of values breaks is refused when that job
composes, with the same one-paragraph message and exit code 2 (hydra_errors).

Optuna's sweeper checks nothing before its first trial, so a fixed bad value (`model.dropout=1.5`)
failed every trial of the search in turn. Its sweep now first checks one trial made of the fixed
values and each searched value at the middle of its range.
"""
from __future__ import annotations

import math
from typing import Any, List, Sequence


def covering_jobs(batch: Sequence[Sequence[str]]) -> List[Sequence[str]]:
    """The jobs of `batch`, in order, that bring an override no earlier chosen job had."""
    seen: set = set()
    chosen = []
    for overrides in batch:
        new = set(overrides) - seen
        if new or not chosen:
            chosen.append(overrides)
            seen |= new
    return chosen


def validate_batch(self, batch: Sequence[Sequence[str]]) -> None:
    """`Sweeper.validate_batch_is_legal` on the covering jobs only, plus cnnlab's value checks."""
    loader = getattr(self, "hydra_context", None)
    loader = loader.config_loader if loader is not None else self.config_loader  # as Hydra picks it
    for overrides in covering_jobs(batch):
        composed = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
        check_job(composed, overrides)


def check_job(composed, overrides: Sequence[str], where: str = "in the sweep's job") -> None:
    """cnnlab's `validate` on one composed job, its error naming the job's overrides."""
    from omegaconf import open_dict, read_write

    from cnnlab.config import validate
    from cnnlab.errors import ConfigError

    with read_write(composed), open_dict(composed):  # a throwaway compose: Hydra composes again per job
        composed.pop("hydra", None)  # resolving hydra.sweep.dir here would claim a folder (cnnlab_unique_dir)
    try:
        validate(composed)
    except ConfigError as exc:
        job = " ".join(overrides) or "no overrides"
        raise ConfigError(f"{str(exc).rstrip('.')} ({where} {job}). Nothing was run.") from None


def middle_of(distribution) -> Any:
    """A value a search over an Optuna distribution draws from: its first choice, or the middle of
    its range (geometric on a log scale), on its step."""
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return choices[0]
    low, high = distribution.low, distribution.high
    kind = type(distribution).__name__
    log = "Log" in kind or getattr(distribution, "log", False)
    middle = math.sqrt(low * high) if log and low > 0 else (low + high) / 2
    step = getattr(distribution, "q", None)
    if step is None and not log:  # reading a log distribution's step is deprecated in optuna 2.10 (it is 1)
        step = getattr(distribution, "step", None)
    if step:
        middle = low + round((middle - low) / step) * step
    return int(round(middle)) if "Int" in kind else middle


def optuna_trial_to_check(impl, arguments: Sequence[str]) -> tuple:
    """One trial's overrides as hydra-optuna-sweeper builds them (fixed values after the searched
    ones), each searched value at the middle of its range."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    searched, fixed = create_params_from_overrides(impl._parse_sweeper_params_config() + list(arguments))
    params = {name: middle_of(d) for name, d in searched.items() if name not in fixed}
    params.update(fixed)
    return tuple(f"{name}={value}" for name, value in params.items())


def instantiate_sweeper(self, **kwargs):
    """Plugins.instantiate_sweeper, with an up-front check added to Optuna's sweep."""
    sweeper = _hydras_instantiate_sweeper(self, **kwargs)
    impl = getattr(sweeper, "sweeper", None)  # hydra-optuna-sweeper's OptunaSweeper wraps its implementation
    if type(impl).__name__ == "OptunaSweeperImpl":
        search = sweeper.sweep

        def sweep(arguments):
            trial = optuna_trial_to_check(impl, arguments)
            composed = impl.hydra_context.config_loader.load_sweep_config(
                master_config=impl.config, sweep_overrides=list(trial))
            check_job(composed, trial, "checked before the first trial, each searched value at the middle "
                                       "of its range:")
            return search(arguments)

        sweeper.sweep = sweep
    return sweeper


def install() -> None:
    global _hydras_instantiate_sweeper
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    Sweeper.validate_batch_is_legal = validate_batch
    if Plugins.instantiate_sweeper is not instantiate_sweeper:
        _hydras_instantiate_sweeper = Plugins.instantiate_sweeper
        Plugins.instantiate_sweeper = instantiate_sweeper


_hydras_instantiate_sweeper = None
