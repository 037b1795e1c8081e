"""The `cnnlab` command: Hydra composes conf/ and the overrides, then one job (or a sweep) runs.

    cnnlab                                    # lecture CNN on the embedded digits, offline
    cnnlab model=resnet18 optim=adam dataset=cifar10
    cnnlab -m optim=sgd,adam model.dropout=0,0.5   # a sweep of four jobs
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cnnlab import sweep
from cnnlab.config import RootConfig, validate
from cnnlab.errors import CnnlabError, write_failure
from cnnlab.naming import run_name, unique_dir
from cnnlab.override_keys import unknown_key_message

log = logging.getLogger("cnnlab")


def _config_dir() -> str:
    """conf/ at the repository root (editable installs) or shipped inside the package (wheels)."""
    packaged = Path(__file__).parent / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf")


# The typed schema sits under every YAML file (conf/config.yaml lists it first), so every key can be
# overridden from the shell, a misspelt key is refused and a value of the wrong type is caught.
ConfigStore.instance().store(name="cnnlab_schema", node=RootConfig)
OmegaConf.register_new_resolver("cnnlab_run_name", run_name, replace=True)
OmegaConf.register_new_resolver("cnnlab_unique_dir", unique_dir, replace=True, use_cache=True)
OmegaConf.register_new_resolver("cnnlab_job_label", sweep.job_label, replace=True)
_exit_code = 0  # a single run's exit code; a sweep's is read from its jobs' records (cnnlab/sweep.py)


@hydra.main(config_path=_config_dir(), config_name="config", version_base=None)
def _hydra_main(cfg: DictConfig):
    global _exit_code
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    try:
        settings = validate(cfg)
        if int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
            settings.resume = True  # a requeued SLURM job continues from checkpoints/last.pt in its folder
        with sweep.job(settings, run_dir) as plan:  # a sweep's job: skip, resume, its own GPU
            if plan.skip:
                return plan.objective
            from cnnlab.run import run_job  # torch and friends load only once the config is known good
            results = run_job(settings, run_dir, overrides)
            return results.get("best_val_acc")
    except CnnlabError as exc:
        status = getattr(exc, "status", "failed")
        message = f"cnnlab: {'error: ' if status == 'failed' else ''}{exc}"
        print(sweep.job_label() + message, file=sys.stderr, flush=True)
        sweep.note_in_train_log(message)
        _record_failure(run_dir, overrides, exc)
        _exit_code = max(_exit_code, exc.exit_code)
        # Ctrl-C or preemption stops a sweep too, not just this job; Optuna records a FAIL trial
        return sweep.after_failure(cfg, run_dir, exc)


def _record_failure(run_dir: Path, overrides: list, exc: CnnlabError) -> None:
    """A failed job leaves a results.json saying so, so a report shows it instead of dropping it."""
    from cnnlab.train import distributed

    if distributed.rank() != 0:
        return  # under torchrun rank 0 writes it
    try:
        from cnnlab.results import write_results
        run_dir.mkdir(parents=True, exist_ok=True)
        write_results(run_dir, {"status": getattr(exc, "status", "failed"), "error": str(exc),
                                "exit_code": exc.exit_code, "overrides": overrides})
    except (OSError, CnnlabError):
        pass  # the folder itself is unwritable; the message above already said what went wrong


def _unwritable_output(argv: list) -> str | None:
    """A run or sweep folder named on the command line must be writable. Checked before Hydra starts:
    Hydra creates the folder before cnnlab runs and would answer with a traceback."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in ("hydra.run.dir", "hydra.sweep.dir") or "${" in value:
            continue
        folder = Path(value).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            return (f"cannot write to {key}={value}: {write_failure(exc)}. Choose a folder you can write "
                    "to; nothing was run.")
    return None


def main() -> None:
    groups = [p.name for p in Path(_config_dir()).iterdir() if p.is_dir()]
    problem = unknown_key_message(sys.argv[1:], groups) or _unwritable_output(sys.argv[1:])
    if problem:
        print(f"cnnlab: error: {problem}", file=sys.stderr)
        sys.exit(2)
    from cnnlab.train import distributed  # imports torch only when torchrun started this process

    sys.argv += distributed.hydra_overrides()  # ranks > 0: rank 0's folder, no .hydra/ or train.log
    code = 0
    try:
        _hydra_main()
    except KeyboardInterrupt:
        print("cnnlab: interrupted.", file=sys.stderr)
        code = 130
    except SystemExit as exc:  # a job's interruption, fail_fast, or Hydra's own exit
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    finally:
        distributed.shutdown()
    code = sweep.finish(code or _exit_code)  # a sweep: its summary, and the worst of its jobs' codes
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
