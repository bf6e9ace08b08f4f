"""`facefactors prepare` on tiny dataset trees: outputs, failures, resume, shards, --no-detect.

The detection tests use the real MTCNN weights, fetched once per machine into the
pytest cache with `pip download` (the `mtcnn_weights_dir` fixture of conftest.py);
where the registry cannot be reached they are skipped with the pip error as the
reason. The
`--no-detect` tests need no weights and point FACEFACTORS_HOME at an empty folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facefactors.constants import pose_bin
from facefactors.data.io import load_image_rgb
from facefactors.data.rafdb import rafdb_image_path
from facefactors.data.writers import write_image, write_rafdb
from facefactors.errors import DataError
from facefactors.faces import weights as W
from facefactors.prepare.outputs import ANNOTATION_COLUMNS
from facefactors.prepare.progress import read_progress
from facefactors.prepare.runner import PrepareOptions, merge_outputs, prepare_dataset
from prepare_helpers import (  # noqa: F401  (fixtures are used by name)
    FRONTAL_YAW_DEG,
    blank_image,
    check_pose_matches_landmarks,
    no_weights,
    outputs,
    photos,
    read_csv,
    run_prepare,
)

# name -> (class, image key); "corrupt" and "missing" files are damaged after writing.
RAF_ENTRIES = [
    ("train_00001.jpg", "happy", "gh"),
    ("train_00002.jpg", "sad", "ast"),
    ("train_00003.jpg", "surprise", "gh_flip"),
    ("train_00004.jpg", "neutral", "blank"),
    ("test_00001.jpg", "anger", "ast_flip"),
    ("test_00002.jpg", "fear", "corrupt"),
    ("test_00003.jpg", "disgust", "missing"),
]


@pytest.fixture(scope="module")
def raf_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rafdb")
    p = photos()
    images = {
        "gh": p["gh"],
        "ast": p["ast"],
        "gh_flip": np.ascontiguousarray(p["gh"][:, ::-1]),
        "ast_flip": np.ascontiguousarray(p["ast"][:, ::-1]),
        "blank": blank_image(),
        "corrupt": p["gh"],
        "missing": p["ast"],
    }
    write_rafdb(root, [(n, c, images[k]) for n, c, k in RAF_ENTRIES])
    bad = rafdb_image_path(root, "test_00002.jpg")
    bad.write_bytes(bad.read_bytes()[:400])  # a truncated JPEG
    rafdb_image_path(root, "test_00003.jpg").unlink()
    return root


@pytest.fixture(scope="module")
def reference(raf_tree, mtcnn_weights_dir, tmp_path_factory):
    """One uninterrupted single-process run through the CLI."""
    out = tmp_path_factory.mktemp("prepared") / "ref"
    code, printed = run_prepare(
        ["rafdb", str(raf_tree), "--out", str(out), "--weights", mtcnn_weights_dir]
    )
    assert code == 0
    return out, printed


def test_annotations_failures_and_summary(reference, raf_tree):
    out, printed = reference
    assert "prepared 4, no face 1, corrupt 1, missing 1" in printed
    with open(out / "annotations.csv") as fh:
        assert fh.readline().strip() == ",".join(ANNOTATION_COLUMNS)
    rows = {Path(r["path"]).name: r for r in read_csv(out / "annotations.csv")}
    expected = {n for n, _c, k in RAF_ENTRIES if k in ("gh", "ast", "gh_flip", "ast_flip")}
    assert set(rows) == {n.replace(".jpg", "_aligned.jpg") for n in expected}
    for name, cls, _k in RAF_ENTRIES:
        row = rows.get(name.replace(".jpg", "_aligned.jpg"))
        if row is None:
            continue
        assert row["label"] == cls and row["split"] == name.split("_")[0]
        assert row["path"].startswith(f"images/{row['split']}/Image/aligned/")
        assert row["subject"] == "" and row["fold"] == ""
        assert float(row["det_score"]) > 0.99
        assert int(row["pose_bin"]) == pose_bin(float(row["yaw"]))
        assert load_image_rgb(out / row["path"]).shape == (112, 112, 3)
        assert abs(float(row["yaw"])) < FRONTAL_YAW_DEG
    check_pose_matches_landmarks(out)

    fails = {Path(r["file"]).name: r for r in read_csv(out / "failures.csv")}
    assert {n: r["reason"] for n, r in fails.items()} == {
        "train_00004_aligned.jpg": "no_face",
        "test_00002_aligned.jpg": "corrupt",
        "test_00003_aligned.jpg": "missing",
    }
    assert fails["test_00002_aligned.jpg"]["label"] == "fear"
    assert "corrupt or truncated" in fails["test_00002_aligned.jpg"]["detail"]


def test_stats_table(reference):
    out, _ = reference
    stats = json.loads((out / "stats.json").read_text())
    rows = read_csv(out / "annotations.csv")
    assert stats["prepared"] == 4 and stats["samples"] == 7
    assert stats["failures"] == {"no_face": 1, "corrupt": 1, "missing": 1}
    for split in ("train", "test"):
        bins = [int(r["pose_bin"]) for r in rows if r["split"] == split]
        want = {str(b): bins.count(b) for b in range(5)}
        assert stats["pose_bins"][split] == {**want, "unknown": 0}
    assert stats["classes"]["train"] == {
        "neutral": 0, "happy": 1, "sad": 1, "surprise": 1, "fear": 0, "disgust": 0, "anger": 0
    }  # fmt: skip
    assert stats["classes"]["test"]["anger"] == 1 and stats["classes"]["test"]["fear"] == 0
    assert stats["landmarks_from"] == {"mtcnn": 4}
    md = (out / "stats.md").read_text()
    assert "| Pose label | Yaw angle | train | test | paper (train) |" in md
    tr, te = stats["pose_bins"]["train"]["0"], stats["pose_bins"]["test"]["0"]
    assert f"| 0 | 0°–10° | {tr} | {te} | 5836 |" in md
    assert "| unknown | — | 0 | 0 | — |" in md
    assert "| total |  | 3 | 1 | 12271 |" in md


def test_resume_after_interruption_gives_identicaloutputs(
    reference, raf_tree, mtcnn_weights_dir, tmp_path
):
    ref_out, _ = reference
    out = tmp_path / "resumed"
    opts = PrepareOptions("rafdb", raf_tree, out, weights_dir=mtcnn_weights_dir, progress=False)
    first = prepare_dataset(dataclasses.replace(opts, limit=3), log=lambda m: None)
    assert first.processed == 3 and len(read_csv(out / "annotations.csv")) == 3

    # A kill while the next record was being written leaves a partial line.
    with open(out / "progress.jsonl", "ab") as fh:
        fh.write(b'{"i": 3, "key": "Image/ali')
    # A kill after an image was written but before its record: a stale file, redone.
    stale = out / "images/test/Image/aligned/test_00001_aligned.jpg"
    write_image(stale, blank_image(112, 112))
    # An image deleted after its record was written is redone too.
    (out / "images/train/Image/aligned/train_00002_aligned.jpg").unlink()

    second = prepare_dataset(opts, log=lambda m: None)
    assert second.processed == 7 - 3 + 1
    assert outputs(out) == outputs(ref_out)
    for row in read_csv(out / "annotations.csv"):
        assert (out / row["path"]).read_bytes() == (ref_out / row["path"]).read_bytes()
    header, records, _ = read_progress(out / "progress.jsonl")
    assert header["dataset"] == "rafdb" and len(records) == 8
    # A third run has nothing left to do.
    assert prepare_dataset(opts, log=lambda m: None).processed == 0


def test_shards_then_merge_equal_one_run(reference, raf_tree, mtcnn_weights_dir, tmp_path):
    ref_out, _ = reference
    a, b = tmp_path / "machine_a", tmp_path / "machine_b"
    base = ["rafdb", str(raf_tree), "--weights", mtcnn_weights_dir]
    run_prepare([*base, "--out", str(a), "--shard", "0/2"])
    run_prepare([*base, "--out", str(b), "--shard", "1/2"])
    # Shard 0 holds positions 0, 2, 4, 6: three faces and the missing file.
    shard_rows = read_csv(a / "annotations.shard-0-of-2.csv")
    assert [Path(r["path"]).stem for r in shard_rows] == [
        "train_00001_aligned",
        "train_00003_aligned",
        "test_00001_aligned",
    ]
    assert not (a / "annotations.csv").exists()
    with pytest.raises(DataError, match="Cannot merge"):
        merge_outputs(a)
    # Shards from two machines: copy one folder into the other, then --merge.
    shutil.copytree(b, a, dirs_exist_ok=True)
    code, printed = run_prepare([*base, "--out", str(a), "--merge"])
    assert code == 0 and "prepared 4, no face 1, corrupt 1, missing 1" in printed
    assert outputs(a) == outputs(ref_out)
    # On one machine, the shard that completes the dataset merges by itself.
    run_prepare([*base, "--out", str(b), "--shard", "0/2"])
    assert outputs(b) == outputs(ref_out)


def test_workers_match_one_process(reference, raf_tree, mtcnn_weights_dir, tmp_path):
    ref_out, _ = reference
    out = tmp_path / "workers"
    run_prepare(
        [
            "rafdb",
            str(raf_tree),
            "--out",
            str(out),
            "--weights",
            mtcnn_weights_dir,
            "--workers",
            "2",
            "--chunk",
            "2",
        ]
    )
    assert outputs(out) == outputs(ref_out)


def test_detection_without_weights_names_the_fetch_command(raf_tree, tmp_path, no_weights):
    with pytest.raises(W.WeightsError, match="facefactors weights fetch mtcnn"):
        run_prepare(["rafdb", str(raf_tree), "--out", str(tmp_path / "out")])
