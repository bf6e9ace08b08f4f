"""`facefactors predict` on folders of mixed files, on a video, and its error cases.

The detection tests use the real MTCNN weights (the `mtcnn_weights_dir` fixture of
conftest.py, which skips with the reason when they cannot be fetched) and a tiny
randomly initialised expression model: the labels are arbitrary but must be the
argmax of the probabilities written beside them.
"""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facefactors.faces import samples
from facefactors.inference.predictions import BASE_COLUMNS
from facefactors.ipd.config import SEVEN_CLASSES
from inference_helpers import run_cli, save_tiny_checkpoint

COLUMNS = [*BASE_COLUMNS, *(f"p_{c}" for c in SEVEN_CLASSES)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def _half(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, ckpt, mtcnn_weights_dir):
    """Two real photos, a text file, a truncated JPEG and a fake video, predicted once."""
    pytest.importorskip("skimage", reason="scikit-image provides the astronaut photo")
    root = tmp_path_factory.mktemp("mixed")
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(_half(samples.grace_hopper())).save(photos / "sub" / "grace_hopper.jpg")
    Image.fromarray(_half(samples.astronaut())).save(photos / "astronaut.png")
    (photos / "notes.txt").write_text("not an image\n")
    whole = io.BytesIO()
    Image.fromarray(samples.grace_hopper()).save(whole, format="JPEG")
    (photos / "broken.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    (photos / "sub" / "fake.mp4").write_text("not a video either\n")

    out, annotate = root / "results.csv", root / "annotated"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_cli(
            ["predict", str(photos), "--checkpoint", str(ckpt), "--out", str(out)]
            + ["--weights", mtcnn_weights_dir, "--annotate", str(annotate), "--batch", "2"]
        )
    return {"code": code, "stderr": err.getvalue(), "out": out, "photos": photos, "ann": annotate}


def test_mixed_folder_rows_and_columns(mixed):
    assert mixed["code"] == 0
    df = pd.read_csv(mixed["out"])
    assert list(df.columns) == COLUMNS
    photos = mixed["photos"]
    # Sorted recursive order; one face per photo, none for the unreadable files.
    assert df["file"].tolist() == [
        str(photos / "astronaut.png"),
        str(photos / "sub/grace_hopper.jpg"),
    ]
    assert df["frame"].isna().all() and df["face"].tolist() == [0, 0]
    assert (df["x2"] > df["x1"]).all() and (df["y2"] > df["y1"]).all()
    assert df["pose_bin"].between(0, 4).all() and (df["det_score"] > 0.9).all()
    probs = df[[f"p_{c}" for c in SEVEN_CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert df["label"].tolist() == [SEVEN_CLASSES[i] for i in probs.argmax(1)]
    np.testing.assert_allclose(df["score"], probs.max(1), atol=1e-6)


def test_unreadable_files_are_counted_and_listed(mixed):
    photos, text = mixed["photos"], mixed["stderr"]
    assert "processed 2 images, 2 faces; skipped 3 unreadable inputs: " in text
    for name in ("broken.jpg", "notes.txt", "fake.mp4"):
        assert name in text
    meta = json.loads(mixed["out"].with_name("results.meta.json").read_text())
    assert (meta["images"], meta["faces"], meta["videos"]) == (2, 2, 0)
    assert meta["classes"] == SEVEN_CLASSES
    reasons = {s["file"]: s["reason"] for s in meta["skipped"]}
    assert "corrupt or truncated" in reasons[str(photos / "broken.jpg")]
    assert "not a readable image" in reasons[str(photos / "notes.txt")]
    assert "could not be opened" in reasons[str(photos / "sub/fake.mp4")]


def test_annotate_draws_on_copies(mixed):
    ann = mixed["ann"] / "photos"
    assert sorted(p.relative_to(ann).as_posix() for p in ann.rglob("*") if p.is_file()) == [
        "astronaut.png",
        "sub/grace_hopper.jpg",
    ]
    original = np.asarray(Image.open(mixed["photos"] / "astronaut.png").convert("RGB"))
    drawn = np.asarray(Image.open(ann / "astronaut.png").convert("RGB"))
    assert drawn.shape == original.shape
    box = pd.read_csv(mixed["out"]).iloc[0][["x1", "y1", "x2", "y2"]].round().astype(int)
    # The box outline is drawn in the label's colour; the corners of the image are not touched.
    assert (
        np.abs(drawn[box.y2, box.x1 : box.x2].astype(int) - original[box.y2, box.x1 : box.x2]).max()
        > 50
    )
    assert np.array_equal(drawn[-5:, -5:], original[-5:, -5:])


def test_json_output_and_video_every_2(tmp_path, ckpt, mtcnn_weights_dir, capsys):
    from facefactors.bench.video import moving_frames, write_video

    video = write_video(moving_frames(6, (320, 240)), tmp_path, stem="clip")
    photo = tmp_path / "gh.jpg"
    Image.fromarray(_half(samples.grace_hopper())).save(photo)
    out, ann = tmp_path / "results.json", tmp_path / "ann"
    code = run_cli(
        ["predict", str(photo), str(video), "--checkpoint", str(ckpt), "--out", str(out)]
        + ["--every", "2", "--weights", mtcnn_weights_dir, "--annotate", str(ann)]
    )
    assert code == 0
    assert "processed 1 image and 1 video (3 frames), 4 faces" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["classes"] == SEVEN_CLASSES and doc["metadata"]["frames"] == 3
    faces = doc["faces"]
    assert [(f["file"], f["frame"], f["face"]) for f in faces] == [
        (str(photo), None, 0),
        (str(video), 0, 0),
        (str(video), 2, 0),
        (str(video), 4, 0),
    ]
    for f in faces:
        assert len(f["box"]) == 4 and np.array(f["landmarks"]).shape == (5, 2)
        assert sum(f["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert f["label"] == max(f["probabilities"], key=f["probabilities"].get)
    frames = sorted(p.name for p in (ann / f"{video.name}_frames").iterdir())
    assert frames == ["frame_000000.jpg", "frame_000002.jpg", "frame_000004.jpg"]
    assert (ann / "gh.jpg").is_file()


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    ckpt, out = tmp_path / "nope.pt", tmp_path / "r.csv"
    assert run_cli(["predict", str(photo), "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"facefactors predict: error: Checkpoint file {ckpt} does not exist."
    assert not out.exists()


def test_bad_options_and_inputs_exit_2(tmp_path, ckpt, capsys, monkeypatch):
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "empty-home"))
    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    base = ["predict", "--checkpoint", str(ckpt)]
    cases = [
        ([str(photo), "--out", str(tmp_path / "r.txt")], "must end in .csv, .jsonl or .json"),
        ([str(photo), "--out", str(tmp_path / "r.csv"), "--every", "0"], "--every must be"),
        ([str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "r.csv")], "does not exist"),
        # A readable image with no MTCNN weights: the fetch command is named.
        ([str(photo), "--out", str(tmp_path / "r.csv")], "facefactors weights fetch mtcnn"),
    ]
    for argv, message in cases:
        assert run_cli([*base, *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
