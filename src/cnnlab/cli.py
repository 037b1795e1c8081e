"""The `cnnlab` command: Hydra composes conf/ and the overrides, then one job (or a sweep) runs.

    cnnlab                                    # lecture CNN on the embedded digits, offline
    cnnlab model=resnet18 optim=adam dataset=cifar10
    cnnlab -m optim=sgd,adam model.dropout=0,0.5   # a sweep of four jobs
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cnnlab import (fast_yaml, hydra_errors, lazy_schema, naming, quick_exit, registry, run_mode, rundir, sweep,
                    sweep_validation, worker_gc)
from cnnlab.config import RootConfig, root_schema, validate
from cnnlab.errors import CnnlabError, write_failure
from cnnlab.naming import run_name, unique_dir
from cnnlab.override_keys import family_key_message, unknown_key_message
from cnnlab.results import objective_value

log = logging.getLogger("cnnlab")


def _config_dir() -> str:
    """conf/ at the repository root (editable installs) or shipped inside the package (wheels)."""
    packaged = Path(__file__).parent / "conf"
    return str(packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf")


fast_yaml.install()  # conf/'s YAML files parsed in C, to the same values
lazy_schema.install()  # dataclasses stored from here on (cnnlab's, the plugins') become nodes when loaded
# The typed schema sits under every YAML file (conf/config.yaml lists it first), so every key can be
# overridden from the shell, a misspelt key is refused and a value of the wrong type is caught.
lazy_schema.store(None, "cnnlab_schema", RootConfig, make=root_schema)
registry.store_schemas()  # schema/model/<family>, ...: each preset in conf/ names its own in its defaults
OmegaConf.register_new_resolver("cnnlab_run_name", run_name, replace=True)
sweep_validation.install()  # a sweep's up-front check composes each distinct override once, not every job
_help_asked = False  # set by main() for --help/-h


def _help_table(kind: str) -> str:
    """--help's list of each family's own keys, from the registry. Hydra resolves the help template
    at every merge into hydra.help, so at every compose; scanning conf/ for it cost ~0.17 s a compose
    (two at start-up, two per sweep job), so the table is built only when help was asked for."""
    return registry.describe(kind, Path(_config_dir())) if _help_asked else ""


OmegaConf.register_new_resolver("cnnlab_registry", _help_table, replace=True)
OmegaConf.register_new_resolver("cnnlab_unique_dir", unique_dir, replace=True, use_cache=True)
OmegaConf.register_new_resolver("cnnlab_job_label", sweep.job_label, replace=True)
_exit_code = 0  # a single run's exit code; a sweep's is read from its jobs' records (cnnlab/sweep.py)


@hydra.main(config_path=_config_dir(), config_name="config", version_base=None)
def _hydra_main(cfg: DictConfig):
    global _exit_code
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun rank 0 holds the folder and speaks
    quick_exit.install()  # a sweep's worker process too: its main process waits for it to exit
    try:
        if lead:
            naming.release_unused(run_dir)  # a dated folder claimed while a preset's own replaced it
            rundir.lock(run_dir)  # before anything is written into it, even a failure record
        settings = validate(cfg)
        if int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
            settings.resume = True  # a requeued SLURM job continues from checkpoints/last.pt in its folder
        with sweep.job(settings, run_dir) as plan:  # a sweep's job: skip, resume, its own GPU
            if plan.skip:
                return plan.objective
            if lead:
                rundir.refuse_existing(run_dir, settings.resume, overrides)
            from cnnlab.run import run_job  # torch and friends load only once the config is known good
            results = run_job(settings, run_dir, overrides)
            return objective_value(results)  # trainer.monitor at the best epoch: what Optuna optimizes
    except CnnlabError as exc:
        status = getattr(exc, "status", "failed")
        message = f"cnnlab: {'error: ' if status == 'failed' else ''}{exc}"
        if lead:
            print(sweep.job_label() + message, file=sys.stderr, flush=True)
            sweep.note_in_train_log(message)
        if getattr(exc, "record", True):
            _record_failure(run_dir, overrides, exc)
        _exit_code = max(_exit_code, exc.exit_code)
        # Ctrl-C or preemption stops a sweep too, not just this job; Optuna records a FAIL trial
        return sweep.after_failure(cfg, run_dir, exc)
    except Exception as exc:
        hydra_errors.mark_task_error(exc)  # a failure of the job, not of the input: Hydra's report, exit 1
        raise
    finally:
        rundir.unlock(run_dir)
        if sweep.runs_in_local_worker():  # the job's objects are released by now
            worker_gc.settle_after_first_job()


def _record_failure(run_dir: Path, overrides: list, exc: CnnlabError) -> None:
    """A failed job leaves a record saying so, so a report shows it instead of dropping it.

    The record goes to attempts/; results.json gets it too unless it holds a completed run, which
    no later attempt may replace.
    """
    from cnnlab.train import distributed

    if distributed.rank() != 0:
        return  # under torchrun rank 0 writes it
    try:
        from cnnlab.results import has_completed_results, write_attempt, write_results
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {"status": getattr(exc, "status", "failed"), "error": str(exc), "exit_code": exc.exit_code,
                  "overrides": overrides}
        path = write_attempt(run_dir, record)
        rundir.restore_hydra_files(run_dir)  # a failed resume leaves the run's own .hydra/ config
        if not has_completed_results(run_dir):
            write_results(run_dir, {**record, "finished_at": json.loads(path.read_text())["finished_at"]})
    except (OSError, ValueError, CnnlabError):
        pass  # the folder itself is unwritable; the message above already said what went wrong


def _unwritable_output(argv: list) -> str | None:
    """A run or sweep folder named on the command line must be writable. Checked before Hydra starts:
    Hydra creates the folder before cnnlab runs and would answer with a traceback. The value is read
    as Hydra reads it (quotes, `${now:...}`); a folder this check made is removed again if it fails."""
    if not rundir.runs(argv):
        return None  # --cfg, --help, --info, --shell-completion write nothing
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if not sep or key not in ("hydra.run.dir", "hydra.sweep.dir"):
            continue
        value = rundir.override_value(arg)
        if value is None:
            continue  # known only once Hydra runs; the job reports it
        folder = Path(value).expanduser()
        made = [p for p in (folder, *folder.parents) if not p.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            for path in made:  # deepest first: no empty folders left behind by a refused command
                with contextlib.suppress(OSError):
                    path.rmdir()
            return (f"cannot write to {key}={value}: {write_failure(exc)}. Choose a folder you can write "
                    "to; nothing was run.")
    return None


def _leave(code: int) -> None:
    """Exit; under torchrun the other ranks wait a moment, so rank 0 ends first, its message is printed
    before torchrun stops the rest, and torchrun names rank 0's exit code as the root cause."""
    if code and int(os.environ.get("RANK", "0")) != 0 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import time
        time.sleep(5)
    sys.exit(code)


def _say(message: str) -> None:
    """An error on stderr, once: under torchrun only rank 0 prints it."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"cnnlab: error: {message}", file=sys.stderr, flush=True)


def main() -> None:
    global _help_asked
    argv = sys.argv[1:]
    _help_asked = "--help" in argv or "-h" in argv
    sweep.forget()
    quick_exit.install()
    if "--version" in argv:
        import cnnlab
        print(f"cnnlab {cnnlab.__version__} (Hydra {hydra.__version__})")
        return
    groups = [p.name for p in Path(_config_dir()).iterdir() if p.is_dir()]
    problem = (unknown_key_message(argv, groups) or family_key_message(argv, Path(_config_dir()))
               or _unwritable_output(argv))
    if problem:
        _say(problem)
        _leave(2)
    try:
        rundir.claim_named(argv)  # before Hydra writes .hydra/ and train.log into the folder
    except CnnlabError as exc:
        _say(str(exc))
        _leave(exc.exit_code)
    from cnnlab.train import distributed  # imports torch only when torchrun started this process

    sys.argv += distributed.hydra_overrides()  # ranks > 0: rank 0's folder, no .hydra/ or train.log
    from cnnlab.train.sanity import hydra_overrides

    sys.argv += hydra_overrides(sys.argv[1:])  # trainer.fast_dev_run: no .hydra/ either
    run_mode.install(Path(_config_dir()), sys.argv[1:])  # run or sweep from -m: one compose fewer
    code = 0
    try:
        with hydra_errors.input_errors():
            _hydra_main()
    except hydra_errors.HydraInputError as exc:
        message, code = sweep.input_error(str(exc))
        _say(message)
        _leave(max(code, sweep.finish(code)) if sweep.jobs_ran() else code)  # a summary only of jobs that ran
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
        _leave(code)


if __name__ == "__main__":
    main()
