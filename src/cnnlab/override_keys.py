"""Catch a misspelt setting on the command line before Hydra does, and suggest the right one.

Hydra refuses an unknown key too, but with a message written for Hydra users ("To append to your
config use +train.epochs=1", which would fail here as well, since the schema is closed). This check
reads only the keys of `key=value` overrides, against the typed schema (cnnlab.config.RootConfig) and
the config groups under conf/; values, `+`/`~` overrides and `hydra.*` keys are left to Hydra.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Iterable, Optional

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
