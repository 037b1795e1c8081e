"""OmegaConf's YAML loader on libyaml's C parser, for the ~12 files every compose reads.

OmegaConf.load (which Hydra calls for each file of conf/) parses with PyYAML's pure-Python loader, a
new loader class per file: ~20 ms of every command's start-up on 2 cores, against ~1 ms in C. The
class here keeps OmegaConf's two changes to SafeLoader (a duplicate key is an error; YAML 1.2 floats
such as 1e-3, and no timestamps) and only swaps the parser, so each file loads to the same values
(tests/test_speed_startup.py). Where PyYAML was built without libyaml nothing changes.
"""
from __future__ import annotations

from typing import Any

import yaml
from omegaconf import _utils


_OMEGACONFS = _utils.get_yaml_loader  # OmegaConf's own, kept for its resolvers (and the tests)


def _loader() -> Any:
    pure = _OMEGACONFS()

    class OmegaConfCLoader(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
        def construct_mapping(self, node: yaml.Node, deep: bool = False) -> Any:
            keys = set()
            for key_node, _ in node.value:
                if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
                    continue
                if key_node.value in keys:
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            f"found duplicate key {key_node.value}",
                                                            key_node.start_mark)
                keys.add(key_node.value)
            return super().construct_mapping(node, deep=deep)

    OmegaConfCLoader.yaml_implicit_resolvers = pure.yaml_implicit_resolvers  # shared, never changed
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
