"""Run or sweep, read from the command line when nothing else can set it: one compose fewer per command.

Before it composes the config it runs, Hydra composes the whole config once more only to read
`hydra.mode` (`Hydra.get_mode`): ~0.3 s of every `cnnlab` command's start-up, a quarter of it. No file
under conf/ sets `hydra.mode` (a test keeps it so), so unless the command line could bring one in
(a `hydra.mode` or `hydra.searchpath` override, another config directory or config name; Hydra's own
launcher and sweeper configs sit under hydra.launcher and hydra.sweeper and cannot), the mode is
what `-m` says and that compose is skipped; Hydra then takes RUN or MULTIRUN from `-m` as it does when
no config sets a mode. Otherwise Hydra reads it as before.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Optional

# Flags that point Hydra at other configs, which may set hydra.mode (with or without "=value").
OTHER_CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")
MODE_LINE = re.compile(r"^\s*mode\s*:", re.MULTILINE)


def files_setting_a_mode(config_dir: Path) -> List[Path]:
    """YAML files under conf/ with a `mode:` key at any depth: where hydra.mode could be set."""
    return [p for p in sorted(config_dir.rglob("*.yaml")) if MODE_LINE.search(p.read_text(encoding="utf-8"))]


def mode_from_command_line(argv: List[str], config_dir: Path) -> bool:
    """True when only the command line decides run vs sweep (so Hydra's mode compose can be skipped)."""
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key in OTHER_CONFIG_FLAGS or key.startswith(("hydra.mode", "hydra.searchpath")):
            return False
    return not files_setting_a_mode(config_dir)


def install(config_dir: Path, argv: Optional[List[str]] = None) -> None:
    """Skip `Hydra.get_mode`'s compose for this command when the command line alone decides."""
    from hydra._internal.hydra import Hydra

    original = getattr(Hydra.get_mode, "original", Hydra.get_mode)
    if not mode_from_command_line(sys.argv[1:] if argv is None else argv, config_dir):
        Hydra.get_mode = original
        return

    def get_mode(self, config_name, overrides):
        return None  # Hydra's answer when no config sets hydra.mode: RUN, or MULTIRUN under -m

    get_mode.original = original
    Hydra.get_mode = get_mode
