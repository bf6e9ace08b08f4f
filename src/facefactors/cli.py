"""``facefactors <command>``: the command-line entry point.

Each command lives in ``facefactors.commands.<name>`` and exposes
``register(subparsers)``; registering imports nothing heavy, so ``--help`` is
instant. A :class:`~facefactors.errors.FaceFactorsError` raised by any command
is printed as one sentence and the process exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from facefactors import __version__
from facefactors.commands import COMMANDS
from facefactors.errors import FaceFactorsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facefactors",
        description="Factor faces into identity, pose, expression and illumination.",
    )
    parser.add_argument("--version", action="version", version=f"facefactors {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except FaceFactorsError as exc:
        print(f"facefactors {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facefactors {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
