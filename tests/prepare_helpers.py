"""Shared helpers of the `facefactors prepare` tests (test_prepare*.py)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from facefactors.faces import samples
from facefactors.prepare.progress import read_progress

# Both portraits look at the camera. (The mirror symmetry of the yaw is tested on the
# full-size photos in test_faces_mtcnn.py; on these ~55 px faces the landmark noise,
# about 2 deg of yaw, is as large as the yaw itself.)
FRONTAL_YAW_DEG = 15.0


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "empty-home"))


def run_prepare(argv: list[str]) -> tuple[int, str]:
    """Run the prepare command as the CLI does; returns (exit code, stdout)."""
    from facefactors.commands import prepare as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["prepare", *argv])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = args.func(args)
    return code, buf.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def outputs(out: Path) -> dict[str, str]:
    names = ("annotations.csv", "failures.csv", "stats.json", "stats.md", "prepared.json")
    return {n: (out / n).read_text() for n in names}


def photos() -> dict[str, np.ndarray]:
    """The two real portraits, downscaled to ~160 px wide so MTCNN runs fast."""
    import cv2

    pytest.importorskip("skimage", reason="scikit-image provides the astronaut photo")
    gh = cv2.resize(samples.grace_hopper(), (160, 188), interpolation=cv2.INTER_AREA)
    ast = samples.astronaut()[0:320, 80:360]  # her head, without the flag patch
    ast = cv2.resize(ast, (160, 183), interpolation=cv2.INTER_AREA)
    return {"gh": gh, "ast": ast}


def check_pose_matches_landmarks(out: Path) -> None:
    """Each prepared row's pose is the estimator's output on its recorded landmarks."""
    from facefactors.faces.pose import estimate_pose

    rows = {r["path"]: r for r in read_csv(out / "annotations.csv")}
    _, records, _ = read_progress(out / "progress.jsonl")
    for rec in records:
        if rec["landmarks_from"] is None:
            continue
        yaw, _pitch, roll = estimate_pose(np.asarray(rec["landmarks5"], np.float32))
        row = rows[rec["path"]]
        # landmarks5 is rounded to 0.01 px in the record; the angles move < 0.5 deg.
        assert abs(float(row["yaw"]) - yaw) < 0.5 and abs(float(row["roll"]) - roll) < 0.5


def blank_image(h: int = 160, w: int = 160) -> np.ndarray:
    ramp = np.linspace(40, 220, w, dtype=np.uint8)
    return np.repeat(np.repeat(ramp[None, :, None], h, 0), 3, 2)
