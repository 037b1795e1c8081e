"""Every experiment preset: each job of its sweep composes and validates, and one job of it trains (tiny)."""
from __future__ import annotations

import itertools
import json

import pytest
from omegaconf import OmegaConf

from conftest import CONF, compose_config

SWEEPS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")
                if OmegaConf.select(OmegaConf.load(p), "hydra.sweeper.params"))
# 28x28 presets run on generated 28x28 images here (keras_cnn does not fit 8x8 digits); 400 images,
# so that a preset keeping 2 of the 10 classes (overfitting, finetune) still has 40 to train on
TINY = {"digits": ["dataset.train_size=40"],
        "fashion_mnist": ["dataset=synthetic", "dataset.shape=[1,28,28]", "dataset.num_samples=400",
                          "dataset.train_size=40", "dataset.eval_batch_size=64"]}


def sweep_jobs(name: str) -> list[list[str]]:
    """The sweep's jobs as override lists, as Hydra's BasicSweeper expands hydra.sweeper.params."""
    params = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").hydra.sweeper.params
    axes = [[f"{key}={value.strip()}" for value in str(values).split(",")] for key, values in params.items()]
    return [list(job) for job in itertools.product(*axes)]


def seeds_of(name: str) -> list[str]:
    return str(OmegaConf.load(CONF / "experiment" / f"{name}.yaml").hydra.sweeper.params.seed).split(",")


def test_every_comparison_preset_sweeps_at_least_three_seeds():
    assert set(SWEEPS) == {"overfitting", "optimizers", "init_activation", "depth", "finetune", "pooling",
                           "architectures", "report"}
    for name in SWEEPS:
        params = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").hydra.sweeper.params
        seeds = seeds_of(name)
        assert len(seeds) >= 3 and seeds == [str(i) for i in range(len(seeds))], name
        assert len(params) >= 2, name


@pytest.mark.parametrize("name", SWEEPS)
def test_every_job_of_the_sweep_composes(name):
    configs = set()
    for job in sweep_jobs(name):
        if job[-1] != "seed=0":  # seeds do not change what is composed
            continue
        cfg = compose_config([f"experiment={name}"] + job)
        assert cfg.experiment == name
        configs.add(repr(cfg))
    assert len(configs) == len(sweep_jobs(name)) // len(seeds_of(name))  # every arm is a different config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny experiment=finetune_pretrain checkpoint for the finetune preset's jobs."""
    from cnnlab.run import run_job
    from conftest import FAST

    overrides = FAST + ["experiment=finetune_pretrain", "trainer.max_epochs=1"] + TINY["fashion_mnist"]
    folder = tmp_path_factory.mktemp("pretrain")
    run_job(compose_config(overrides), folder, overrides)
    return folder / "checkpoints" / "best.pt"


@pytest.mark.parametrize("name", [n for n in SWEEPS if n != "report"])  # report: test_data_presets.py, end to end
def test_one_job_of_each_preset_trains(name, train_run, pretrained):
    job = sweep_jobs(name)[-1]  # the last arm: the remedy, the deepest network, the most unfrozen
    if name == "finetune":
        job = ["variant=last_block", "seed=0", f"model.pretrained={pretrained}"]
    dataset = compose_config([f"experiment={name}"]).dataset.name
    results, run_dir = train_run([f"experiment={name}", "trainer.max_epochs=1"] + job + TINY[dataset])
    assert results["status"] == "completed" and results["epochs"] == 1
    if name == "finetune":
        assert results["trainable_params"] < results["params"]
    if name == "init_activation":
        record = json.loads((run_dir / "activations.json").read_text())
        assert len(record["layers"]) == 5 and [e["epoch"] for e in record["epochs"]] == [0, 1]
        first = record["epochs"][0]
        assert all(sum(h["counts"]) == record["inputs"] * 100 for h in first["activations"].values())
        assert len(first["grad_norms"]) == 6


def test_the_94_percent_preset_is_the_fast_recipe_wider_and_longer_with_flips_and_shifts(train_run):
    fast, wide = compose_config(["experiment=fast"]), compose_config(["experiment=fast94"])
    assert (wide.experiment, wide.dataset.name, wide.trainer.max_epochs) == ("fast94", "fashion_mnist", 16)
    assert wide.model.blocks == [[16], [64], [128]] and wide.model.whiten and fast.model.whiten
    assert (wide.dataset.augment.flip, wide.dataset.augment.crop, wide.trainer.test_time_flip) == (True, 1, True)
    assert not fast.trainer.test_time_flip
    assert (wide.optim, wide.sched, wide.loss) == (fast.optim, fast.sched, fast.loss)
    results, _ = train_run(["experiment=fast94", "trainer.max_epochs=1"] + TINY["fashion_mnist"])
    assert results["status"] == "completed" and results["epochs"] == 1
    assert results["params"] == 611_338  # conv 16/64/128 (the first fixed), dense 2048 -> 256 -> 10
