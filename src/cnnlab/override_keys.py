"""Catch a misspelt setting on the command line before Hydra does, and suggest the right one.

Hydra refuses an unknown key too, but with a message written for Hydra users ("To append to your
config use +train.epochs=1", which would fail here as well, since the schema is closed). This check
reads only the keys of `key=value` overrides, against the typed schema (cnnlab.config.RootConfig, with
the keys of every registered model family) and the config groups under conf/; values, `+`/`~`
overrides and `hydra.*` keys are left to Hydra. `family_key_message` then refuses a model key that
the chosen model's family does not have (`model=resnet18 model.inception=naive`), listing its keys.
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Iterable, Optional

from cnnlab import registry
from cnnlab.config import RootConfig


def _settings(schema: type, prefix: str = "") -> dict[str, Optional[type]]:
    """Every dotted key of the schema -> its dataclass type, or None for a leaf value."""
    keys: dict[str, Optional[type]] = {}
    for f in dataclasses.fields(schema):
        key = prefix + f.name
        nested = f.default_factory if dataclasses.is_dataclass(f.default_factory) else None
        keys[key] = nested
        if nested is not None:
            keys.update(_settings(nested, key + "."))
    return keys


# Hydra's flags whose value is the next argument (`--cfg job`, `--config-dir DIR`)
_FLAGS_WITH_VALUE = ("-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
                     "-cd", "--config-dir", "-i", "--info", "--experimental-rerun")


def unknown_key_message(argv: Iterable[str], groups: Iterable[str]) -> Optional[str]:
    """A one-paragraph error for the first override whose key is not a setting, else None."""
    argv = list(argv)
    if any(a.split("=", 1)[0] in ("-sc", "--shell-completion") for a in argv):
        return None  # its arguments (install=bash, query=bash) are Hydra's, not settings
    settings = _settings(RootConfig)
    for kind, (group, _) in registry.KINDS.items():  # any family's, optimizer's or schedule's keys
        settings.update({f"{group}.{key}": None for key in registry.all_keys(kind)})
    groups = set(groups)
    for previous, arg in zip([""] + argv, argv):
        if previous in _FLAGS_WITH_VALUE:
            continue  # e.g. the folder after --config-dir
        key, sep, _ = arg.partition("=")
        if not sep or arg.startswith(("-", "+", "~")) or "@" in key or key.split(".")[0].split("/")[0] == "hydra":
            continue  # not an override, or one of Hydra's own forms (append, delete, package, hydra.*)
        if key in settings or key in groups:
            continue
        parent = key.rsplit(".", 1)[0] if "." in key else None
        if parent in settings and settings[parent] is None:
            continue  # an element of a list value, e.g. optim.betas.0
        return (f"there is no setting '{key}' (from '{arg}').{_hint(key, settings, groups)} `cnnlab --cfg job` "
                "prints every setting with its current value; nothing was run.")
    return None


def _hint(key: str, settings: dict[str, Optional[type]], groups: set[str]) -> str:
    """The closest settings by whole key or by last part ('lr' -> optim.lr), else the section's keys."""
    leaves = [k for k, nested in settings.items() if nested is None] + sorted(groups)

    def likeness(candidate: str) -> float:
        whole = difflib.SequenceMatcher(None, key, candidate).ratio()
        last = difflib.SequenceMatcher(None, key.rsplit(".", 1)[-1], candidate.rsplit(".", 1)[-1]).ratio()
        return max(whole, last)

    close = [c for c in sorted(leaves, key=likeness, reverse=True)[:2] if likeness(c) >= 0.7]
    if close:
        return f" Did you mean {' or '.join(close)}?"
    section = key.rsplit(".", 1)[0] if "." in key else ""
    if settings.get(section) is not None:
        inside = [k[len(section) + 1:] for k in leaves if k.startswith(section + ".")]
        return f" The settings under {section} are: {', '.join(k for k in inside if '.' not in k)}."
    return ""


def _is_setting(arg: str) -> bool:
    key, sep, _ = arg.partition("=")
    return bool(sep) and not arg.startswith(("-", "+", "~")) and "@" not in key


def family_key_message(argv: Iterable[str], conf_dir: Path) -> Optional[str]:
    """A one-paragraph error for the first `model.KEY=...` (or optim., sched.) that does nothing in the
    chosen model's family (the optimizer, the schedule; any of a sweep), else None. Where the choice
    cannot be told here, Hydra refuses the key instead."""
    argv = list(argv)
    for kind, (group, name_key) in registry.KINDS.items():
        keys_set = [arg.partition("=")[0] for arg in argv if _is_setting(arg) and arg.startswith(group + ".")]
        if not keys_set:
            continue
        for preset in _chosen_presets(argv, conf_dir, group):
            name = _registered_name(preset, conf_dir, group, name_key)
            if name not in registry.names(kind):
                continue
            own = registry.get(kind, name).keys()
            for key in keys_set:
                if key.split(".")[1] not in own:
                    return registry.foreign_key_message(kind, name, key.partition(".")[2], preset)
    return None


def _chosen_presets(argv: list, conf_dir: Path, group: str) -> list:
    """The group's presets this command runs: `group=...` (each of a sweep), an experiment's, or the default."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    chosen, experiment = None, None
    for arg in argv:
        key = arg.partition("=")[0].lstrip("+")
        if key not in (group, "experiment") or "=" not in arg or arg.startswith("-"):
            continue
        try:
            override = parser.parse_override(arg)
            values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                      else [str(override.value())])
        except Exception:  # noqa: BLE001 - a glob or a syntax error: Hydra reports it
            return []
        if key == group:
            chosen = values
        else:
            experiment = values[0]
    if chosen is not None:
        return chosen
    try:
        if experiment:
            preset = OmegaConf.to_container(OmegaConf.load(conf_dir / "experiment" / f"{experiment}.yaml"))
            swept = ((preset.get("hydra") or {}).get("sweeper") or {}).get("params", {}).get(group)
            if swept:
                return [v.strip() for v in str(swept).split(",")]
            for item in preset.get("defaults", []):
                for k, v in (item.items() if isinstance(item, dict) else ()):
                    if k.replace("override", "").strip().lstrip("/") == group:
                        return [str(v)]
        root = OmegaConf.to_container(OmegaConf.load(conf_dir / "config.yaml"))  # unresolved: ${...} stay text
        return [str(v) for item in root["defaults"] if isinstance(item, dict) for k, v in item.items()
                if k == group]
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return []


def _registered_name(preset: str, conf_dir: Path, group: str, name_key: str) -> Optional[str]:
    """The family (model) or name (optim, sched) a preset in conf/<group>/ chooses."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(conf_dir / group / f"{preset}.yaml").get(name_key)
    except Exception:  # noqa: BLE001 - no such preset: Hydra lists the options
        return None
