"""Each dataset source has its own typed config in the registry, and a key it does not read is refused
(`dataset=mnist dataset.num_samples=100`).

Parametrized over the registered sources, so a new source is checked once it is registered.
"""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from cnnlab import registry
from cnnlab.config import DatasetConfig
from cnnlab.errors import ConfigError
from conftest import CONF, FAST, compose_config, run_cli

SOURCES = registry.names("dataset")
COMMON = set(registry.get("dataset", "digits").keys())
# a value that differs from the default, for each key only some sources read
VALUES = {"shape": [1, 8, 8], "num_classes": 3, "num_samples": 64, "download": False, "path": "/tmp"}


def _needed(source: str) -> dict:
    return {"path": "/tmp"} if source == "folder" else {}  # a folder dataset cannot go without its folder


def test_every_key_only_some_sources_read_is_tried_here():
    source_only = set(registry.all_keys("dataset")) - COMMON
    assert source_only == set(VALUES)
    assert "image_size" not in source_only  # every source resizes or decodes to it


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_reads_its_keys_and_refuses_the_others(source):
    entry = registry.get("dataset", source)
    for key, value in VALUES.items():
        values = {"name": source, **_needed(source), key: value}
        if key in entry.keys():
            assert getattr(registry.make_config("dataset", values), key) == value
            continue
        with pytest.raises(ConfigError) as info:
            registry.make_config("dataset", values)
        message = str(info.value)
        assert f"dataset.{key} does nothing in dataset={source}" in message
        assert "\n" not in message and "nothing was run" in message


@pytest.mark.parametrize("source", SOURCES)
def test_each_preset_names_its_sources_schema_and_composes_to_it(source):
    preset = OmegaConf.load(CONF / "dataset" / f"{source}.yaml")
    assert f"/schema/dataset/{source}@_here_" in preset.defaults
    cfg = compose_config([f"dataset={source}"] + [f"dataset.{k}={v}" for k, v in _needed(source).items()])
    assert type(cfg.dataset) is registry.get("dataset", source).config and cfg.dataset.name == source


def test_the_flat_constructor_gives_the_sources_config():
    assert type(DatasetConfig(name="synthetic", num_samples=8)) is registry.get("dataset", "synthetic").config
    with pytest.raises(TypeError, match="num_samples"):
        DatasetConfig(name="mnist", num_samples=8)


@pytest.mark.parametrize("overrides, refused", [
    (["dataset=mnist", "dataset.num_samples=100"], "dataset.num_samples does nothing in dataset=mnist"),
    (["dataset.download=false"], "dataset.download does nothing in dataset=digits"),
    (["dataset=synthetic", "dataset.path=/tmp"], "dataset.path does nothing in dataset=synthetic"),
])
def test_the_command_line_refuses_it_before_any_work(tmp_path, overrides, refused):
    done = run_cli(overrides + FAST, cwd=tmp_path)
    assert done.returncode == 2 and refused in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_source_key_of_the_chosen_source_is_taken():
    assert compose_config(["dataset=synthetic", "dataset.num_samples=100"]).dataset.num_samples == 100


def test_a_run_saved_when_every_source_had_every_key_still_resumes(train_run, tmp_path):
    from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint

    train_run(["trainer.max_epochs=1", "trainer.num_threads=1"], tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    # the one flat dataset config of earlier versions: the other sources' keys at their defaults
    state["config"]["dataset"].update(shape=[3, 32, 32], num_classes=10, num_samples=1024, download=True, path=None)
    save_checkpoint(state, last)
    resumed, _ = train_run(["trainer.max_epochs=2", "trainer.num_threads=1", "resume=true"], tmp_path / "run")
    assert resumed["status"] == "completed" and resumed["epochs"] == 2
