"""OmegaConf's YAML loader on libyaml's C parser, for the ~12 files every compose reads.

OmegaConf.load (which Hydra calls for each file of conf/) parses with PyYAML's pure-Python loader, a
new loader class per file: ~20 ms of every command's start-up on 2 cores, against ~1 ms in C. The
class here is OmegaConf's own loader (a duplicate key is an error; YAML 1.2 floats such as 1e-3, and
no timestamps) with only the parser swapped, so each file loads to the same values
(tests/test_speed_startup.py). Where PyYAML was built without libyaml nothing changes.
"""
from __future__ import annotations

from typing import Any

import yaml
from omegaconf import _utils


_OMEGACONFS = _utils.get_yaml_loader  # OmegaConf's own, as it was before install() replaced it


def _loader() -> Any:
    pure = _OMEGACONFS()

    # CSafeLoader first in the MRO (its __init__ and libyaml's parser), then OmegaConf's loader: its
    # construct_mapping (the duplicate key check) and its resolvers are inherited, not copied
    class OmegaConfCLoader(yaml.CSafeLoader, pure):  # type: ignore[misc, valid-type, name-defined]
        pass

    return OmegaConfCLoader


def install() -> bool:
    """OmegaConf.load and OmegaConf.create(yaml_text) parse in C from now on; False without libyaml."""
    if not getattr(yaml, "__with_libyaml__", False) or getattr(_utils.get_yaml_loader, "cnnlab", False):
        return False
    loader = _loader()

    def get_yaml_loader() -> Any:
        return loader

    get_yaml_loader.cnnlab = True  # type: ignore[attr-defined]
    _utils.get_yaml_loader = get_yaml_loader
    return True
