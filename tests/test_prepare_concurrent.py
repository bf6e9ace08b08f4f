"""Two `facefactors prepare` shards running at the same time on one output folder merge.

Both processes are started, import everything, and then wait on a barrier file so
that they really process at the same moment: each starts before the other has a
single record, which is the case where neither used to merge.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facefactors.prepare.runner import PrepareOptions, prepare_dataset
from prepare_helpers import read_csv

SRC = Path(__file__).resolve().parents[1] / "src"
# Waits for the barrier, then runs the real CLI entry point.
RUNNER = """
import os, sys, time
from pathlib import Path
from facefactors import cli
import facefactors.prepare.runner, facefactors.data.registry  # imported before the barrier
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
sys.exit(cli.main(sys.argv[3:]))
"""


def _dataset(root: Path, n: int = 48) -> Path:
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    lines = ["path,label"]
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            root / "img" / f"{k:03d}.png"
        )
        lines.append(f"img/{k:03d}.png,{('happy', 'sad', 'neutral')[k % 3]}")
    (root / "list.csv").write_text("\n".join(lines) + "\n")
    return root / "list.csv"


def test_two_shards_at_once_merge(tmp_path) -> None:
    csv_path = _dataset(tmp_path / "data")
    out, barrier = tmp_path / "out", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(SRC), FACEFACTORS_HOME=str(tmp_path / "home"))
    procs = []
    for i in range(2):
        argv = ["prepare", "csv", str(csv_path), "--out", str(out), "--no-detect"]
        argv += ["--shard", f"{i}/2", "--size", "32", "--chunk", "2"]
        ready = tmp_path / f"ready{i}"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(ready), str(barrier), *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    barrier.touch()
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    errs = [err for _out, err in results]
    merged = [e for e in errs if "this shard finished last: merged into" in e]
    assert merged, errs  # at least one shard merged (both may, writing the same bytes)
    rows = read_csv(out / "annotations.csv")
    assert len(rows) == 48 and [Path(r["path"]).stem for r in rows] == [
        f"{k:03d}" for k in range(48)
    ]
    # The same files as one process over the whole dataset.
    one = tmp_path / "one"
    prepare_dataset(
        PrepareOptions("csv", csv_path, one, size=32, detect=False, chunk=2), log=lambda m: None
    )
    assert (out / "annotations.csv").read_bytes() == (one / "annotations.csv").read_bytes()


def test_a_shard_that_is_not_last_says_how_the_merge_happens(tmp_path) -> None:
    csv_path = _dataset(tmp_path / "data", n=6)
    said: list[str] = []
    opts = PrepareOptions("csv", csv_path, tmp_path / "out", size=32, detect=False)
    from facefactors.prepare.progress import Shard

    opts.shard = Shard.parse("0/2")
    assert prepare_dataset(opts, log=said.append).remaining == 3
    assert any("the last shard to finish writes annotations.csv" in m and "--merge" in m
               for m in said)  # fmt: skip
    assert not (tmp_path / "out" / "annotations.csv").exists()
