"""Argument groups shared by several commands (config presets and ``--set`` overrides)."""

from __future__ import annotations

import argparse


def add_config_option(p: argparse.ArgumentParser, examples: str) -> None:
    """``--config PRESET``: a preset name from ``facefactors/configs`` or a YAML file."""
    p.add_argument(
        "--config", default=None, metavar="PRESET",
        help=f"preset name (e.g. {examples}) or YAML file",
    )  # fmt: skip


def add_overrides_option(
    p: argparse.ArgumentParser, example: str, flag: str = "--set", dest: str = "overrides"
) -> None:
    """A repeatable ``--set KEY=VALUE`` override of config keys (unknown keys are errors)."""
    p.add_argument(
        flag, dest=dest, action="append", default=[], metavar="KEY=VALUE",
        help=f"override a config key, e.g. {flag} {example} (repeatable)",
    )  # fmt: skip
