"""The command-line entry point: help, version, and error exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys

from facefactors import __version__
from facefactors.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("synth", "bench"):
        assert cmd in out


def test_every_command_is_registered(capsys):
    from facefactors.cli import build_parser
    from facefactors.commands import COMMANDS, export, predict

    names = {
        "synth", "pretrain-id", "train", "evaluate", "reproduce", "prepare",
        "weights", "predict", "export", "bench", "demo",
    }  # fmt: skip
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert names <= set(sub.choices), names - set(sub.choices)
    assert predict.register in COMMANDS and export.register in COMMANDS
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in names)


def test_console_script_runs():
    r = subprocess.run(
        [sys.executable, "-m", "facefactors", "--help"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "facefactors" in r.stdout
