"""Dataset keys that only some sources read are refused with the others (`dataset=mnist dataset.num_samples=100`).

Parametrized over the sources (cnnlab.data.sources.SOURCES), so a new source is checked once it is added.
"""
from __future__ import annotations

import pytest

from cnnlab.config import DatasetConfig
from cnnlab.data.sources import SOURCES
from cnnlab.data_schema import SOURCE_KEYS, check_source_keys, source_only_keys
from cnnlab.errors import ConfigError
from conftest import compose_config

# a value that differs from the default, for each key only some sources read
VALUES = {"shape": [1, 8, 8], "num_classes": 3, "num_samples": 64, "download": False, "path": "/tmp"}


def test_every_source_says_which_of_the_source_only_keys_it_reads():
    missing = sorted(set(SOURCES) - set(SOURCE_KEYS))
    assert not missing, f"add {missing} to SOURCE_KEYS in src/cnnlab/data_schema.py"
    assert set(VALUES) == set(source_only_keys())
    assert all(hasattr(DatasetConfig(), key) for key in source_only_keys())
    assert "image_size" not in source_only_keys()  # every source resizes or decodes to it


@pytest.mark.parametrize("source", sorted(SOURCE_KEYS))
def test_each_source_refuses_the_keys_it_does_not_read(source):
    for key in source_only_keys():
        dataset = DatasetConfig(name=source, **{key: VALUES[key]})
        if key in SOURCE_KEYS[source]:
            check_source_keys(dataset, DatasetConfig())  # acts: accepted
            continue
        with pytest.raises(ConfigError) as info:
            check_source_keys(dataset, DatasetConfig())
        message = str(info.value)
        assert f"dataset.{key}=" in message and f"does nothing with dataset={source}" in message
        assert "\n" not in message and "nothing was run" in message


@pytest.mark.parametrize("overrides, refused", [
    (["dataset=mnist", "dataset.num_samples=100"], "dataset.num_samples=100 does nothing with dataset=mnist"),
    (["dataset.download=false"], "dataset.download=false does nothing with dataset=digits"),
    (["dataset=synthetic", "dataset.path=/tmp"], "dataset.path=/tmp does nothing with dataset=synthetic"),
])
def test_the_composed_config_is_refused_before_any_work(overrides, refused):
    with pytest.raises(ConfigError, match=refused):
        compose_config(overrides)
    assert compose_config(["dataset=synthetic", "dataset.num_samples=100"]).dataset.num_samples == 100
