"""Values that pass their type but cannot train: infinity or NaN anywhere, seeds no generator takes."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Tuple

from cnnlab.errors import ConfigError

SEED_MAX = 2**63 - 1  # torch, NumPy (mod 2^32) and Python's random all take 0..2^63-1


def check_values(settings: Any) -> None:
    for key, value in _leaves(settings):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value} is not allowed: {key} must be a finite number. An infinite or NaN "
                              "setting makes the loss NaN at the first step.")
    seed = settings.seed
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={seed} is not allowed: seed must be an integer from 0 to 2^63-1 ({SEED_MAX}).")


def _leaves(node: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of every setting; list items as key.N."""
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _leaves(getattr(node, f.name), prefix + f.name + ".")
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _leaves(item, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), node
