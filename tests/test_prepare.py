"""`facefactors prepare` on tiny dataset trees: outputs, failures, resume, shards, --no-detect.

The detection tests use the real MTCNN weights, fetched once per machine into the
pytest cache with `pip download` (the `mtcnn_weights_dir` fixture of conftest.py);
where the registry cannot be reached they are skipped with the pip error as the
reason. The
`--no-detect` tests need no weights and point FACEFACTORS_HOME at an empty folder.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facefactors.constants import arcface_template, pose_bin
from facefactors.data.io import load_image_rgb, resize_square
from facefactors.data.labels import CKPLUS6
from facefactors.data.rafdb import rafdb_image_path
from facefactors.data.writers import write_ckplus_sequence, write_image, write_rafdb
from facefactors.errors import ConfigError, DataError
from facefactors.faces import samples
from facefactors.faces import weights as W
from facefactors.prepare.outputs import ANNOTATION_COLUMNS
from facefactors.prepare.plan import output_rel, plan_jobs
from facefactors.prepare.process import five_point_landmarks
from facefactors.prepare.progress import Shard, read_progress
from facefactors.prepare.runner import PrepareOptions, merge_outputs, prepare_dataset

# Both portraits look at the camera. (The mirror symmetry of the yaw is tested on the
# full-size photos in test_faces_mtcnn.py; on these ~55 px faces the landmark noise,
# about 2 deg of yaw, is as large as the yaw itself.)
FRONTAL_YAW_DEG = 15.0


@pytest.fixture(autouse=True)
def _one_thread():
    # Measured: MTCNN on a 160 px image took 0.05 s on one thread, 0.4 s on two busy cores.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "empty-home"))


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run the prepare command as the CLI does; returns (exit code, stdout)."""
    from facefactors.commands import prepare as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["prepare", *argv])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = args.func(args)
    return code, buf.getvalue()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _outputs(out: Path) -> dict[str, str]:
    names = ("annotations.csv", "failures.csv", "stats.json", "stats.md", "prepared.json")
    return {n: (out / n).read_text() for n in names}


def _photos() -> dict[str, np.ndarray]:
    """The two real portraits, downscaled to ~160 px wide so MTCNN runs fast."""
    import cv2

    pytest.importorskip("skimage", reason="scikit-image provides the astronaut photo")
    gh = cv2.resize(samples.grace_hopper(), (160, 188), interpolation=cv2.INTER_AREA)
    ast = samples.astronaut()[0:320, 80:360]  # her head, without the flag patch
    ast = cv2.resize(ast, (160, 183), interpolation=cv2.INTER_AREA)
    return {"gh": gh, "ast": ast}


def _check_pose_matches_landmarks(out: Path) -> None:
    """Each prepared row's pose is the estimator's output on its recorded landmarks."""
    from facefactors.faces.pose import estimate_pose

    rows = {r["path"]: r for r in _read_csv(out / "annotations.csv")}
    _, records, _ = read_progress(out / "progress.jsonl")
    for rec in records:
        if rec["landmarks_from"] is None:
            continue
        yaw, _pitch, roll = estimate_pose(np.asarray(rec["landmarks5"], np.float32))
        row = rows[rec["path"]]
        # landmarks5 is rounded to 0.01 px in the record; the angles move < 0.5 deg.
        assert abs(float(row["yaw"]) - yaw) < 0.5 and abs(float(row["roll"]) - roll) < 0.5


def _blank(h: int = 160, w: int = 160) -> np.ndarray:
    ramp = np.linspace(40, 220, w, dtype=np.uint8)
    return np.repeat(np.repeat(ramp[None, :, None], h, 0), 3, 2)


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
    p = _photos()
    images = {
        "gh": p["gh"],
        "ast": p["ast"],
        "gh_flip": np.ascontiguousarray(p["gh"][:, ::-1]),
        "ast_flip": np.ascontiguousarray(p["ast"][:, ::-1]),
        "blank": _blank(),
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
    code, printed = _cli(
        ["rafdb", str(raf_tree), "--out", str(out), "--weights", mtcnn_weights_dir]
    )
    assert code == 0
    return out, printed


def test_annotations_failures_and_summary(reference, raf_tree):
    out, printed = reference
    assert "prepared 4, no face 1, corrupt 1, missing 1" in printed
    with open(out / "annotations.csv") as fh:
        assert fh.readline().strip() == ",".join(ANNOTATION_COLUMNS)
    rows = {Path(r["path"]).name: r for r in _read_csv(out / "annotations.csv")}
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
    _check_pose_matches_landmarks(out)

    fails = {Path(r["file"]).name: r for r in _read_csv(out / "failures.csv")}
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
    rows = _read_csv(out / "annotations.csv")
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


def test_resume_after_interruption_gives_identical_outputs(
    reference, raf_tree, mtcnn_weights_dir, tmp_path
):
    ref_out, _ = reference
    out = tmp_path / "resumed"
    opts = PrepareOptions("rafdb", raf_tree, out, weights_dir=mtcnn_weights_dir, progress=False)
    first = prepare_dataset(dataclasses.replace(opts, limit=3), log=lambda m: None)
    assert first.processed == 3 and len(_read_csv(out / "annotations.csv")) == 3

    # A kill while the next record was being written leaves a partial line.
    with open(out / "progress.jsonl", "ab") as fh:
        fh.write(b'{"i": 3, "key": "Image/ali')
    # A kill after an image was written but before its record: a stale file, redone.
    stale = out / "images/test/Image/aligned/test_00001_aligned.jpg"
    write_image(stale, _blank(112, 112))
    # An image deleted after its record was written is redone too.
    (out / "images/train/Image/aligned/train_00002_aligned.jpg").unlink()

    second = prepare_dataset(opts, log=lambda m: None)
    assert second.processed == 7 - 3 + 1
    assert _outputs(out) == _outputs(ref_out)
    for row in _read_csv(out / "annotations.csv"):
        assert (out / row["path"]).read_bytes() == (ref_out / row["path"]).read_bytes()
    header, records, _ = read_progress(out / "progress.jsonl")
    assert header["dataset"] == "rafdb" and len(records) == 8
    # A third run has nothing left to do.
    assert prepare_dataset(opts, log=lambda m: None).processed == 0


def test_shards_then_merge_equal_one_run(reference, raf_tree, mtcnn_weights_dir, tmp_path):
    ref_out, _ = reference
    a, b = tmp_path / "machine_a", tmp_path / "machine_b"
    base = ["rafdb", str(raf_tree), "--weights", mtcnn_weights_dir]
    _cli([*base, "--out", str(a), "--shard", "0/2"])
    _cli([*base, "--out", str(b), "--shard", "1/2"])
    # Shard 0 holds positions 0, 2, 4, 6: three faces and the missing file.
    shard_rows = _read_csv(a / "annotations.shard-0-of-2.csv")
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
    code, printed = _cli([*base, "--out", str(a), "--merge"])
    assert code == 0 and "prepared 4, no face 1, corrupt 1, missing 1" in printed
    assert _outputs(a) == _outputs(ref_out)
    # On one machine, the shard that completes the dataset merges by itself.
    _cli([*base, "--out", str(b), "--shard", "0/2"])
    assert _outputs(b) == _outputs(ref_out)


def test_workers_match_one_process(reference, raf_tree, mtcnn_weights_dir, tmp_path):
    ref_out, _ = reference
    out = tmp_path / "workers"
    _cli(
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
    assert _outputs(out) == _outputs(ref_out)


def _aligned_raf_tree(root: Path, crops: dict[str, np.ndarray]) -> Path:
    """A RAF-DB tree of 100x100 pre-aligned crops, names train_/test_ as keys say."""
    write_rafdb(root, [(name, "happy", img) for name, img in crops.items()])
    return root


def test_no_detect_without_weights_records_unknown_pose(tmp_path, no_weights, capsys):
    rng = np.random.default_rng(0)
    crops = {
        "train_00001.jpg": rng.integers(0, 256, (100, 100, 3), dtype=np.uint8),
        "train_00002.jpg": _blank(100, 100),
        "test_00001.jpg": _blank(100, 100)[::-1].copy(),
    }
    root = _aligned_raf_tree(tmp_path / "raf", crops)
    out = tmp_path / "out"
    code, printed = _cli(["rafdb", str(root), "--out", str(out), "--no-detect", "--format", "png"])
    assert code == 0 and "prepared 3, no face 0, corrupt 0, missing 0" in printed
    assert "weights fetch mtcnn" in capsys.readouterr().err
    rows = _read_csv(out / "annotations.csv")
    assert len(rows) == 3
    for row in rows:
        assert row["pose_bin"] == "-1"
        assert row["yaw"] == row["pitch"] == row["roll"] == row["det_score"] == ""
    # The crop is only resized (lossless PNG: compare with the same resize).
    first = load_image_rgb(out / rows[0]["path"])
    source = load_image_rgb(rafdb_image_path(root, "train_00001.jpg"))
    assert np.array_equal(first, resize_square(source, 112))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pose_bins"]["train"] == {"0": 0, "1": 0, "2": 0, "3": 0, "4": 0, "unknown": 2}
    # A rerun with another size would mix two outputs: refused, naming the log.
    with pytest.raises(ConfigError, match="progress.jsonl"):
        _cli(
            [
                "rafdb",
                str(root),
                "--out",
                str(out),
                "--no-detect",
                "--format",
                "png",
                "--size",
                "64",
            ]
        )


def test_no_detect_with_weights_takes_pose_from_the_crop(tmp_path, mtcnn_weights_dir):
    from facefactors.faces.align import align_face
    from facefactors.faces.mtcnn import MTCNN

    gh = _photos()["gh"]
    (_boxes, lms) = MTCNN(mtcnn_weights_dir).detect(gh)[0]
    crop = align_face(gh, lms[0], 100)
    crops = {
        "train_00001.jpg": crop,
        "train_00002.jpg": np.ascontiguousarray(crop[:, ::-1]),
        "test_00001.jpg": _blank(100, 100),
    }
    root = _aligned_raf_tree(tmp_path / "raf", crops)
    out = tmp_path / "out"
    _cli(["rafdb", str(root), "--out", str(out), "--no-detect", "--weights", mtcnn_weights_dir])
    rows = {Path(r["path"]).name: r for r in _read_csv(out / "annotations.csv")}
    for name in ("train_00001_aligned.jpg", "train_00002_aligned.jpg"):
        row = rows[name]
        assert abs(float(row["yaw"])) < FRONTAL_YAW_DEG and float(row["det_score"]) > 0.9
        assert int(row["pose_bin"]) == pose_bin(float(row["yaw"]))
    _check_pose_matches_landmarks(out)
    # A crop without a face is still prepared (it is the dataset's crop), pose unknown.
    blank = rows["test_00001_aligned.jpg"]
    assert blank["pose_bin"] == "-1" and blank["yaw"] == ""
    _, records, _ = read_progress(out / "progress.jsonl")
    assert [r["landmarks_from"] for r in records] == ["crop", "crop", None]
    # The landmarks are stored in the written crop's pixels: the crop was aligned to
    # the template, so they lie near it (least squares: ~5 px residuals, as in the
    # faces tests), and the padding added for MTCNN has been taken off.
    assert np.abs(np.array(records[0]["landmarks5"]) - arcface_template(112)).max() < 8.0


def _ibug68(five: np.ndarray) -> np.ndarray:
    """68 iBUG points whose eye/nose/mouth-corner points are exactly ``five``."""
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48] = five[0], five[1]
    lm[30], lm[48], lm[54] = five[2], five[3], five[4]
    return lm


def test_five_point_landmarks():
    five = np.array([[30.0, 40.0], [70.0, 41.0], [50.0, 60.0], [35.0, 80.0], [66.0, 79.0]])
    lm = _ibug68(five)
    lm[36:42, 0] += np.array([-3, -1, 1, 3, 1, -1])  # eye contour around its centre
    assert np.allclose(five_point_landmarks(lm), five)
    assert np.allclose(five_point_landmarks(five), five)
    assert five_point_landmarks(np.zeros((21, 2))) is None and five_point_landmarks(None) is None


def test_ckplus_prepared_folder_reads_back(tmp_path, no_weights):
    from facefactors.data import FaceDataset, load_dataset
    from facefactors.faces.pose import estimate_pose
    from facefactors.prepare.dataset import load_prepared

    root = tmp_path / "ck"
    frames = [_blank(96, 96)[:, :, 0] for _ in range(4)]
    write_ckplus_sequence(root, "S001", "001", frames, "happy")
    write_ckplus_sequence(root, "S002", "001", frames, "sad")
    # Landmarks for S001 only: a frontal face in the frame; S002's pose stays unknown.
    five = np.round(arcface_template(96) * 0.8 + 10, 2)
    for k in range(1, 5):
        d = root / "Landmarks/S001/001"
        d.mkdir(parents=True, exist_ok=True)
        np.savetxt(d / f"S001_001_{k:08d}_landmarks.txt", _ibug68(five), fmt="%.4f")
    out = tmp_path / "out"
    _cli(
        ["ckplus6", str(root), "--out", str(out), "--no-detect", "--opt", "folds=2", "--size", "64"]
    )

    rows = _read_csv(out / "annotations.csv")
    assert [r["subject"] for r in rows] == ["S001"] * 4 + ["S002"] * 4
    assert [r["label"] for r in rows] == [
        "neutral",
        "happy",
        "happy",
        "happy",
        "neutral",
        "sad",
        "sad",
        "sad",
    ]
    yaw = estimate_pose(five.astype(np.float32))[0]
    assert {r["yaw"] for r in rows[:4]} == {f"{yaw:.3f}"}
    assert {r["pose_bin"] for r in rows[:4]} == {str(pose_bin(yaw))}
    assert {r["pose_bin"] for r in rows[4:]} == {"-1"}

    index = load_prepared(out)
    assert index.name == "ckplus6" and index.classes == CKPLUS6 and index.extra_neutral
    assert index.meta["folds"] == 2 and index.subjects == ("S001", "S002")
    assert [s.label for s in index.samples[:2]] == [6, CKPLUS6.index("happy")]
    assert {s.fold for s in index.samples} == {0, 1}
    item = FaceDataset(index, "all", 64)[1]
    assert item["pose_bin"] == pose_bin(yaw) and item["identity"] == 0
    assert item["image"].shape == (3, 64, 64)
    # The plain csv loader reads the same folder (classes inferred from the labels).
    plain = load_dataset("csv", out)
    assert plain.classes == ("neutral", "happy", "sad")
    assert [s.meta["pose_bin"] for s in plain.samples][4:] == [-1] * 4


def test_ferplus_pixels_become_image_files(tmp_path, no_weights):
    root = tmp_path / "ferplus"
    root.mkdir()
    px = " ".join(str(v) for v in (np.arange(48 * 48) % 251))
    usages = ["Training", "PublicTest", "PrivateTest"]
    (root / "fer2013.csv").write_text(
        "emotion,pixels,Usage\n" + "".join(f"3,{px},{u}\n" for u in usages)
    )
    votes = ["0,10,0,0,0,0,0,0,0,0", "0,0,9,1,0,0,0,0,0,0", "10,0,0,0,0,0,0,0,0,0"]
    (root / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        + "".join(f"{u},fer{k:07d}.png,{v}\n" for k, (u, v) in enumerate(zip(usages, votes)))
    )
    out = tmp_path / "out"
    _cli(["ferplus", str(root), "--out", str(out), "--no-detect"])
    rows = _read_csv(out / "annotations.csv")
    assert [(r["path"], r["label"]) for r in rows] == [
        ("images/train/fer0000000.jpg", "happy"),
        ("images/val/fer0000001.jpg", "surprise"),
        ("images/test/fer0000002.jpg", "neutral"),
    ]
    assert load_image_rgb(out / rows[0]["path"]).shape == (112, 112, 3)


def test_detection_without_weights_names_the_fetch_command(raf_tree, tmp_path, no_weights):
    with pytest.raises(W.WeightsError, match="facefactors weights fetch mtcnn"):
        _cli(["rafdb", str(raf_tree), "--out", str(tmp_path / "out")])


def test_bad_options_and_damaged_log(tmp_path, no_weights):
    for text in ("1/1", "2", "a/b", "-1/2"):
        with pytest.raises(ConfigError, match="--shard"):
            Shard.parse(text)
    assert Shard.parse("1/3").selects(4) and not Shard.parse("1/3").selects(3)
    root = _aligned_raf_tree(tmp_path / "raf", {"train_1.jpg": _blank(), "test_1.jpg": _blank()})
    with pytest.raises(ConfigError, match="no option 'colour'"):
        _cli(["rafdb", str(root), "--out", str(tmp_path / "o"), "--no-detect", "--opt", "colour=1"])
    out = tmp_path / "out"
    _cli(["rafdb", str(root), "--out", str(out), "--no-detect"])
    log = out / "progress.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + b"garbage\n" + b"".join(lines[1:]))
    with pytest.raises(DataError, match="progress.jsonl line 2"):
        _cli(["rafdb", str(root), "--out", str(out), "--no-detect"])


def test_output_names_are_stable_and_unique(tmp_path):
    from facefactors.data.records import DatasetIndex, Sample

    root = tmp_path / "d"
    samples_ = [
        Sample(str(root / "train/happy/a.jpg"), 0, "train"),
        Sample(str(root / "train/happy/a.png"), 0, "train"),
        Sample(str(root / "train/happy/a.jpg"), 1, "train"),  # same file, second label
        Sample(None, 1, "test", meta={"image_name": "fer0000007.png"}),
    ]
    root.mkdir()
    index = DatasetIndex("folder", ("happy", "sad"), samples_, str(root))
    names = [j.out_rel for j in plan_jobs(index, "jpg")]
    assert names == [
        "images/train/train/happy/a.jpg",
        "images/train/train/happy/a-2.jpg",
        "images/train/train/happy/a.jpg",
        "images/test/fer0000007.jpg",
    ]
    assert output_rel("x/y.z.png", "val", "png") == "images/val/x/y.z.png"
