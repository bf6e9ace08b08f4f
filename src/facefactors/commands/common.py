"""Argument groups shared by several commands (config presets and ``--set`` overrides)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


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


def add_resume_option(p: argparse.ArgumentParser, folder: str) -> None:
    """``--resume``: continue a run folder from its checkpoint, with its saved config."""
    p.add_argument(
        "--resume", action="store_true",
        help=f"continue {folder} from checkpoints/last.pt with its saved config "
        "(plus --set overrides)",
    )  # fmt: skip


def run_config(cls: type, args: argparse.Namespace, saved: Callable[[], dict], example: str) -> Any:
    """The config of a fresh run (``--config`` + ``--set``) or of a resumed one.

    Args:
        cls: the config dataclass.
        args: parsed ``config``, ``overrides`` and ``resume``.
        saved: returns the config dict stored in the run's checkpoint (called on resume).
        example: a preset name for the error message.

    Raises:
        ConfigError: ``--config`` with ``--resume``, or neither.
    """
    from facefactors.config import apply_overrides, from_dict, load_config
    from facefactors.errors import ConfigError

    if args.resume:
        if args.config is not None:
            raise ConfigError(
                f"--resume continues {args.out} with the config saved in its checkpoint; "
                "drop --config (use --set to change keys such as the number of epochs)."
            )
        return from_dict(cls, apply_overrides(saved(), args.overrides))
    if args.config is None:
        raise ConfigError(f"Pass --config PRESET (e.g. {example}) or --resume.")
    return load_config(cls, args.config, args.overrides)
