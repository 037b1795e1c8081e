"""The `cnnlab` command: Hydra composes conf/ and the overrides, then one job (or a sweep) runs.

    cnnlab                                    # lecture CNN on the embedded digits, offline
    cnnlab model=resnet18 optim=adam dataset=cifar10
    cnnlab -m optim=sgd,adam model.dropout=0,0.5   # a sweep of four jobs
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cnnlab.config import RootConfig, validate
from cnnlab.errors import CnnlabError
from cnnlab.naming import run_name

log = logging.getLogger("cnnlab")


def _config_dir() -> str:
    """conf/ at the repository root (editable installs) or shipped inside the package (wheels)."""
    packaged = Path(__file__).parent / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf")


# The typed schema sits under every YAML file (conf/config.yaml lists it first), so every key can be
# overridden from the shell, a misspelt key is refused and a value of the wrong type is caught.
ConfigStore.instance().store(name="cnnlab_schema", node=RootConfig)
OmegaConf.register_new_resolver("cnnlab_run_name", run_name, replace=True)
_exit_code = 0  # the worst exit code of the jobs this process ran


@hydra.main(config_path=_config_dir(), config_name="config", version_base=None)
def _hydra_main(cfg: DictConfig):
    global _exit_code
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    try:
        settings = validate(cfg)
        from cnnlab.run import run_job  # torch and friends load only once the config is known good
        results = run_job(settings, run_dir, overrides)
        return results.get("best_val_acc")
    except CnnlabError as exc:
        status = getattr(exc, "status", "failed")
        print(f"cnnlab: {'error: ' if status == 'failed' else ''}{exc}", file=sys.stderr, flush=True)
        _record_failure(run_dir, overrides, exc)
        if status == "interrupted":  # Ctrl-C or preemption stops a sweep too, not just this job
            raise SystemExit(exc.exit_code)
        _exit_code = max(_exit_code, exc.exit_code)
        return None


def _record_failure(run_dir: Path, overrides: list, exc: CnnlabError) -> None:
    """A failed job leaves a results.json saying so, so a report shows it instead of dropping it."""
    try:
        from cnnlab.results import write_results
        run_dir.mkdir(parents=True, exist_ok=True)
        write_results(run_dir, {"status": getattr(exc, "status", "failed"), "error": str(exc),
                                "overrides": overrides})
    except OSError:
        pass  # the folder itself is unwritable; the message above already said what went wrong


def main() -> None:
    try:
        _hydra_main()
    except KeyboardInterrupt:
        print("cnnlab: interrupted.", file=sys.stderr)
        sys.exit(130)
    if _exit_code:
        sys.exit(_exit_code)


if __name__ == "__main__":
    main()
