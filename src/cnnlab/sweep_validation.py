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
failed every trial of the search in turn. Its sweep now first checks the values every trial shares.
"""
from __future__ import annotations

from typing import List, Sequence


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
        check_job(loader, self.config, overrides)


def check_job(loader, master_config, overrides: Sequence[str], where: str = "in the sweep's job") -> None:
    """Compose one job as its launch will, then run cnnlab's `validate` on it; its error names the
    job's overrides."""
    from omegaconf import open_dict, read_write
    from omegaconf.errors import OmegaConfBaseException

    from cnnlab.config import validate
    from cnnlab.errors import ConfigError

    composed = loader.load_sweep_config(master_config=master_config, sweep_overrides=list(overrides))
    with read_write(composed), open_dict(composed):  # a throwaway compose: Hydra composes again per job
        composed.pop("hydra", None)  # resolving hydra.sweep.dir here would claim a folder (cnnlab_unique_dir)
    try:
        validate(composed)
    except OmegaConfBaseException:
        return  # a value only a job can resolve (${hydra:runtime.cwd}: HydraConfig is set in jobs): its job checks it
    except ConfigError as exc:
        job = " ".join(overrides) or "no overrides"
        raise ConfigError(f"{str(exc).rstrip('.')} ({where} {job}). Nothing was run.") from None


def optuna_fixed_values(impl, arguments: Sequence[str]) -> tuple:
    """The overrides every trial of the search shares, as hydra-optuna-sweeper gathers them: the fixed
    values of hydra.sweeper.params and of the command line (a searched key keeps its default here)."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    _, fixed = create_params_from_overrides(impl._parse_sweeper_params_config() + list(arguments))
    return tuple(f"{name}={value}" for name, value in fixed.items())


def instantiate_sweeper(self, **kwargs):
    """Plugins.instantiate_sweeper, with an up-front check added to Optuna's sweep."""
    sweeper = _hydras_instantiate_sweeper(self, **kwargs)
    impl = getattr(sweeper, "sweeper", None)  # hydra-optuna-sweeper's OptunaSweeper wraps its implementation
    if type(impl).__name__ == "OptunaSweeperImpl":
        search = sweeper.sweep

        def sweep(arguments):
            # only what every trial shares: a bad searched value fails its own trial, recorded as such
            check_job(impl.hydra_context.config_loader, impl.config, optuna_fixed_values(impl, arguments),
                      "in every trial of the search:")
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
