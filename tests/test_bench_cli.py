"""`facefactors bench <what> --json` prints one JSON object with the promised keys.

Only the output format is checked here; speed is measured by running the bench.
"""

from __future__ import annotations

import json

from facefactors.cli import main


def test_bench_synth_prints_json(capsys):
    assert (
        main(["bench", "synth", "--json", "--size", "32", "--seconds", "0.2", "--threads", "1"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "synth" and out["size"] == 32 and out["threads"] == 1
    assert out["faces_per_s"] > 0


def test_bench_unknown_target_exits_2(capsys):
    try:
        main(["bench", "nothing"])
    except SystemExit as e:
        assert e.code == 2
    assert "invalid choice" in capsys.readouterr().err
