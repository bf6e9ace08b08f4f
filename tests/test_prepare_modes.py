"""`facefactors prepare` input modes and formats: --no-detect, 68-point landmarks, CK+,
FERPlus pixels, option errors and output names (see test_prepare.py for the detection runs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facefactors.constants import arcface_template, pose_bin
from facefactors.data.io import load_image_rgb, resize_square
from facefactors.data.labels import CKPLUS6
from facefactors.data.rafdb import rafdb_image_path
from facefactors.data.writers import write_ckplus_sequence, write_rafdb
from facefactors.errors import ConfigError, DataError
from facefactors.prepare.plan import output_rel, plan_jobs
from facefactors.prepare.process import five_point_landmarks
from facefactors.prepare.progress import Shard, read_progress
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


def _aligned_raf_tree(root: Path, crops: dict[str, np.ndarray]) -> Path:
    """A RAF-DB tree of 100x100 pre-aligned crops, names train_/test_ as keys say."""
    write_rafdb(root, [(name, "happy", img) for name, img in crops.items()])
    return root


def test_no_detect_without_weights_records_unknown_pose(tmp_path, no_weights, capsys):
    rng = np.random.default_rng(0)
    crops = {
        "train_00001.jpg": rng.integers(0, 256, (100, 100, 3), dtype=np.uint8),
        "train_00002.jpg": blank_image(100, 100),
        "test_00001.jpg": blank_image(100, 100)[::-1].copy(),
    }
    root = _aligned_raf_tree(tmp_path / "raf", crops)
    out = tmp_path / "out"
    code, printed = run_prepare(
        ["rafdb", str(root), "--out", str(out), "--no-detect", "--format", "png"]
    )
    assert code == 0 and "prepared 3, no face 0, corrupt 0, missing 0" in printed
    assert "weights fetch mtcnn" in capsys.readouterr().err
    rows = read_csv(out / "annotations.csv")
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
        run_prepare(
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

    gh = photos()["gh"]
    (_boxes, lms) = MTCNN(mtcnn_weights_dir).detect(gh)[0]
    crop = align_face(gh, lms[0], 100)
    crops = {
        "train_00001.jpg": crop,
        "train_00002.jpg": np.ascontiguousarray(crop[:, ::-1]),
        "test_00001.jpg": blank_image(100, 100),
    }
    root = _aligned_raf_tree(tmp_path / "raf", crops)
    out = tmp_path / "out"
    run_prepare(
        ["rafdb", str(root), "--out", str(out), "--no-detect", "--weights", mtcnn_weights_dir]
    )
    rows = {Path(r["path"]).name: r for r in read_csv(out / "annotations.csv")}
    for name in ("train_00001_aligned.jpg", "train_00002_aligned.jpg"):
        row = rows[name]
        assert abs(float(row["yaw"])) < FRONTAL_YAW_DEG and float(row["det_score"]) > 0.9
        assert int(row["pose_bin"]) == pose_bin(float(row["yaw"]))
    check_pose_matches_landmarks(out)
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
    from facefactors.data.prepared import load_prepared
    from facefactors.faces.pose import estimate_pose

    root = tmp_path / "ck"
    frames = [blank_image(96, 96)[:, :, 0] for _ in range(4)]
    write_ckplus_sequence(root, "S001", "001", frames, "happy")
    write_ckplus_sequence(root, "S002", "001", frames, "sad")
    # Landmarks for S001 only: a frontal face in the frame; S002's pose stays unknown.
    five = np.round(arcface_template(96) * 0.8 + 10, 2)
    for k in range(1, 5):
        d = root / "Landmarks/S001/001"
        d.mkdir(parents=True, exist_ok=True)
        np.savetxt(d / f"S001_001_{k:08d}_landmarks.txt", _ibug68(five), fmt="%.4f")
    out = tmp_path / "out"
    run_prepare(
        ["ckplus6", str(root), "--out", str(out), "--no-detect", "--opt", "folds=2", "--size", "64"]
    )

    rows = read_csv(out / "annotations.csv")
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
    run_prepare(["ferplus", str(root), "--out", str(out), "--no-detect"])
    rows = read_csv(out / "annotations.csv")
    assert [(r["path"], r["label"]) for r in rows] == [
        ("images/train/fer0000000.jpg", "happy"),
        ("images/val/fer0000001.jpg", "surprise"),
        ("images/test/fer0000002.jpg", "neutral"),
    ]
    assert load_image_rgb(out / rows[0]["path"]).shape == (112, 112, 3)


def test_bad_options_and_damaged_log(tmp_path, no_weights):
    for text in ("1/1", "2", "a/b", "-1/2"):
        with pytest.raises(ConfigError, match="--shard"):
            Shard.parse(text)
    assert Shard.parse("1/3").selects(4) and not Shard.parse("1/3").selects(3)
    root = _aligned_raf_tree(
        tmp_path / "raf", {"train_1.jpg": blank_image(), "test_1.jpg": blank_image()}
    )
    with pytest.raises(ConfigError, match="no option 'colour'"):
        run_prepare(
            ["rafdb", str(root), "--out", str(tmp_path / "o"), "--no-detect", "--opt", "colour=1"]
        )
    out = tmp_path / "out"
    run_prepare(["rafdb", str(root), "--out", str(out), "--no-detect"])
    log = out / "progress.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + b"garbage\n" + b"".join(lines[1:]))
    with pytest.raises(DataError, match="progress.jsonl line 2"):
        run_prepare(["rafdb", str(root), "--out", str(out), "--no-detect"])


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
    jobs = plan_jobs(index, "jpg")
    assert [j.out_rel for j in jobs] == [
        "images/train/happy/a.jpg",  # the split folder is not repeated
        "images/train/happy/a-2.jpg",
        "images/train/happy/a.jpg",
        "images/test/fer0000007.jpg",
    ]
    # The name folders prepared before had (kept for their progress records).
    assert jobs[0].legacy_rel == "images/train/train/happy/a.jpg" and jobs[3].legacy_rel is None
    assert output_rel("x/y.z.png", "val", "png") == "images/val/x/y.z.png"
    assert output_rel("Validation/x.png", "val", "png") == "images/val/x.png"
    assert output_rel("Image/aligned/x.jpg", "train", "jpg") == "images/train/Image/aligned/x.jpg"
