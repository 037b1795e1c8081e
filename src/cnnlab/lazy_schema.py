"""Schemas in Hydra's ConfigStore that become config nodes only when a compose loads them.

`ConfigStore.store` turns a dataclass into an OmegaConf node at once, about 1 ms each (the root
schema ~15 ms). cnnlab registers some forty (every model family, optimizer, schedule and dataset
source), Hydra's plugins a dozen more (each launcher's and sampler's settings), and a command
composes a handful of them, so storing them all that way cost ~70 ms of every command's start-up.
Each entry here is Hydra's own ConfigNode whose `node` is made on first read and kept, and
ConfigStore.load (which copies the entry and deep-copies its node) sees no difference
(tests/test_registry_optim.py, tests/test_speed_startup.py).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, List, Optional

from hydra.core.config_store import ConfigNode, ConfigStore
from omegaconf import OmegaConf


class LazySchema(ConfigNode):
    def __init__(self, name: str, schema: Any, group: Optional[str], package: Optional[str] = None,
                 provider: Optional[str] = "cnnlab", make: Optional[Callable[[], Any]] = None):
        self.name, self.group, self.package, self.provider = name, group, package, provider
        self._schema = schema  # a dataclass, or an instance of one
        self._make = make or (lambda: OmegaConf.structured(schema))  # or a node shared with other readers
        self._made: List[Any] = []  # shared by ConfigStore.load's shallow copies: made once

    @property
    def node(self):  # type: ignore[override]
        own = self.__dict__.get("_own")
        if own is not None:
            return own
        if not self._made:
            self._made.append(self._make())
        return self._made[0]

    @node.setter
    def node(self, value) -> None:  # ConfigStore.load gives its copy a deep copy of the node
        self.__dict__["_own"] = value


def store(group: Optional[str], name: str, schema: Any, package: Optional[str] = None,
          provider: Optional[str] = "cnnlab", make: Optional[Callable[[], Any]] = None) -> None:
    """ConfigStore.store(group=group, name=name, node=schema), the node made on first load (by `make`,
    if given: a cached node that ConfigStore.load copies, as it copies its own)."""
    folder = ConfigStore.instance().repo
    for part in group.split("/") if group else ():
        folder = folder.setdefault(part, {})
    name = name if name.endswith(".yaml") else f"{name}.yaml"  # as Hydra names its entries
    folder[name] = LazySchema(name, schema, group, package, provider, make)


_eager_store = ConfigStore.store


def _store(self: ConfigStore, name: str, node: Any, group: Optional[str] = None,
           package: Optional[str] = None, provider: Optional[str] = None) -> None:
    if dataclasses.is_dataclass(node):  # a dataclass or an instance: Hydra would make its node now
        store(group, name, node, package, provider)
    else:  # a dict, a list or a node already made: nothing to save
        _eager_store(self, name=name, node=node, group=group, package=package, provider=provider)


def install() -> None:
    """Every later ConfigStore.store of a dataclass is lazy: the plugins' launcher and sampler
    settings, stored when Hydra scans its plugins at every start, are made only if a run picks them."""
    ConfigStore.store = _store  # type: ignore[method-assign]
