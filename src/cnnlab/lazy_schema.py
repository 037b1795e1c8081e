"""Schemas in Hydra's ConfigStore that become config nodes only when a compose loads them.

`ConfigStore.store` turns a dataclass into an OmegaConf node at once, about 1 ms each. cnnlab
registers some forty (every model family, optimizer, schedule and dataset source) and a command
composes four of them, so storing them all that way cost ~50 ms of every command's start-up. Each
entry here is Hydra's own ConfigNode whose `node` is made on first read and kept, and ConfigStore.load
(which copies the entry and deep-copies its node) sees no difference (tests/test_registry_optim.py).
"""
from __future__ import annotations

from typing import Any, List

from hydra.core.config_store import ConfigNode, ConfigStore
from omegaconf import OmegaConf


class LazySchema(ConfigNode):
    def __init__(self, name: str, schema: type, group: str):
        self.name, self.group, self.package, self.provider = name, group, None, "cnnlab"
        self._schema = schema
        self._made: List[Any] = []  # shared by ConfigStore.load's shallow copies: made once

    @property
    def node(self):  # type: ignore[override]
        own = self.__dict__.get("_own")
        if own is not None:
            return own
        if not self._made:
            self._made.append(OmegaConf.structured(self._schema))
        return self._made[0]

    @node.setter
    def node(self, value) -> None:  # ConfigStore.load gives its copy a deep copy of the node
        self.__dict__["_own"] = value


def store(group: str, name: str, schema: type) -> None:
    """ConfigStore.store(group=group, name=name, node=schema), the node made on first load."""
    folder = ConfigStore.instance().repo
    for part in group.split("/"):
        folder = folder.setdefault(part, {})
    folder[f"{name}.yaml"] = LazySchema(f"{name}.yaml", schema, group)
