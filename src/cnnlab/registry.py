"""One registry for the things a config names: model families, optimizers, schedules, dataset sources.

Each entry is a name, its own typed config dataclass (only the keys that act in it) and its factory,
given as "module:function" so that torch loads only when something is built. Validation, the
override check, `cnnlab --help`, the error messages and the tests read the names and keys from here:

    register("model", "resnet", ResNetConfig, "cnnlab.models.resnet:build_resnet")

Hydra sees the same dataclasses: `store_schemas` puts each one in Hydra's ConfigStore as
`schema/<kind>/<name>`, and each preset in conf/<group>/ lists its own in its defaults list, so a
composed config holds exactly the keys of its family.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict

from cnnlab.errors import ConfigError

# kind -> (config group it is chosen by, the key of that group holding the registered name)
KINDS = {"model": ("model", "family"), "optim": ("optim", "name"), "sched": ("sched", "name"),
         "dataset": ("dataset", "name")}
LABELS = {"model": "family", "optim": "optimizer", "sched": "schedule", "dataset": "dataset source"}
# where each kind's entries register themselves (torch-free modules), imported on first use
_MODULES = {"model": "cnnlab.models.schema", "optim": "cnnlab.optim_schema", "sched": "cnnlab.optim_schema",
            "dataset": "cnnlab.data_schema"}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    config: type  # the dataclass with this entry's keys, and its defaults
    factory: str  # "module:function"

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.config)]

    def load(self) -> Callable:
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)


_ENTRIES: Dict[str, Dict[str, Entry]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str, config: type, factory: str) -> None:
    if name in _ENTRIES[kind]:
        raise ValueError(f"{kind} {name!r} is registered twice")
    _ENTRIES[kind][name] = Entry(kind, name, config, factory)


def config_class(kind: str, base: type, cls: type, args: tuple, kwargs: dict) -> type:
    """The class `base(...)` stands for, in the base's __new__: `ModelConfig(family="resnet")` is a
    ResNetConfig and `OptimConfig(name="adam")` an AdamConfig, so code written for one flat config
    keeps working (Python then runs that class's __init__, where another entry's key is a TypeError)."""
    chosen = kwargs.get(KINDS[kind][1])
    if cls is base and chosen is not None and not args:
        return get(kind, chosen).config
    return cls


def entries(kind: str) -> Dict[str, Entry]:
    _load(kind)
    return dict(_ENTRIES[kind])


def names(kind: str) -> tuple:
    return tuple(entries(kind))


def get(kind: str, name: Any) -> Entry:
    found = entries(kind).get(name)
    if found is None:
        group, key = KINDS[kind]
        raise ConfigError(f"{group}.{key}={name!r} is not allowed: {group}.{key} must be one of "
                          f"{', '.join(names(kind))}.")
    return found


def all_keys(kind: str) -> list[str]:
    """Every key of any entry of the kind, in first-seen order (for typo suggestions)."""
    seen: dict[str, None] = {}
    for entry in entries(kind).values():
        seen.update(dict.fromkeys(entry.keys()))
    return list(seen)


def owners(kind: str, key: str) -> list[str]:
    return [name for name, entry in entries(kind).items() if key in entry.keys()]


def make_config(kind: str, values: dict) -> Any:
    """The entry's typed config from plain values, or a ConfigError naming the key (one paragraph)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    group, name_key = KINDS[kind]
    entry = get(kind, values.get(name_key))
    foreign = [k for k in values if k not in entry.keys()]
    if foreign and not owners(kind, foreign[0]):
        raise ConfigError(f"unknown config key '{group}.{foreign[0]}'. Check the spelling; `cnnlab --cfg job` "
                          "prints every key.")
    if foreign:
        raise ConfigError(foreign_key_message(kind, entry.name, foreign[0], values.get("name")))
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(entry.config), values))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"bad value for '{group}.{key}': {first_line}.") from None
    check = getattr(cfg, "check", None)
    if check is not None:
        check()
    return cfg


def foreign_key_message(kind: str, name: str, key: str, preset: Any = None) -> str:
    """`model.inception` on a ResNet: it would change nothing, so say whose key it is and what this one has."""
    group, _ = KINDS[kind]
    label = LABELS[kind]
    chosen = f"{group}={preset} (the {name} {label})" if preset and preset != name else f"{group}={name}"
    top = key.split(".")[0]
    others = owners(kind, top)
    where = f" {group}.{top} is a key of: {', '.join(others)}." if others else ""
    return (f"{group}.{key} does nothing in {chosen}, so it is refused.{where} The keys of {name} are: "
            f"{', '.join(entries(kind)[name].keys())}. Drop the setting, or pick a {group}= option that has it; "
            "nothing was run.")


def presets(kind: str, conf_dir: Path) -> Dict[str, list]:
    """name -> the presets in conf/<group>/ that choose it (e.g. resnet -> plain18, resnet18, ...)."""
    from omegaconf import OmegaConf

    group, name_key = KINDS[kind]
    found: Dict[str, list] = {name: [] for name in names(kind)}
    for path in sorted((conf_dir / group).glob("*.yaml")):
        found.setdefault(str(OmegaConf.load(path).get(name_key)), []).append(path.stem)
    return found


def describe(kind: str, conf_dir: Path, indent: str = "  ") -> str:
    """Each entry's own keys and its presets, as `cnnlab --help` lists them."""
    common = _common_keys(kind)
    lines = [f"{indent}every {LABELS[kind]}: {', '.join(common)}"]
    for name, chosen_by in presets(kind, conf_dir).items():
        if name not in _ENTRIES[kind]:
            continue
        own = [k for k in get(kind, name).keys() if k not in common]
        lines.append(f"{indent}{name}: {', '.join(own) or '-'}  ({KINDS[kind][0]}={', '.join(chosen_by)})")
    return "\n".join(lines)


def markdown_keys(kind: str) -> str:
    """The README's "common keys" cell for the group: the keys all entries share, then each one's own."""
    common = [k for k in _common_keys(kind) if k not in ("name", KINDS[kind][1])]
    choices: Dict[str, tuple] = {}
    for entry in entries(kind).values():
        choices.update(getattr(entry.config, "CHOICES", {}))

    def key(k: str) -> str:
        return f"`{k}`" + (f" ({'/'.join(choices[k])})" if k in choices else "")

    parts = [f"every {LABELS[kind]}: " + ", ".join(key(k) for k in common)] if common else []
    for name, entry in entries(kind).items():
        own = [k for k in entry.keys() if k not in _common_keys(kind)]
        parts.append(f"**{name}**: " + (", ".join(key(k) for k in own) or "-"))
    return "; ".join(parts)


def _common_keys(kind: str) -> list[str]:
    keysets = [entry.keys() for entry in entries(kind).values()]
    return [k for k in keysets[0] if all(k in other for other in keysets)] if keysets else []


def store_schemas() -> None:
    """Every entry's dataclass into Hydra's ConfigStore as schema/<kind>/<name>, each turned into a
    config node only when a compose loads it (cnnlab/lazy_schema.py)."""
    from cnnlab import lazy_schema

    for kind in KINDS:
        for name, entry in entries(kind).items():
            lazy_schema.store(f"schema/{kind}", name, entry.config)


def require(ok: bool, key: str, allowed: str, value: Any) -> None:
    """The one wording of a value out of range (as cnnlab.config's checks)."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {key} must be {allowed}.")


def _load(kind: str) -> None:
    importlib.import_module(_MODULES[kind])
