"""ExpressionRecognizer: aligned tensors (no detector), real photos, tables, tracking.

Tests on real photographs need the MTCNN weights (the `mtcnn_weights_dir` fixture
of conftest.py fetches them, or skips with the reason). The tests on aligned
tensors run with an empty weight folder: detection is only created when needed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from facefactors.errors import DataError
from facefactors.faces import samples
from facefactors.faces.weights import WeightsError
from facefactors.inference import ExpressionRecognizer
from facefactors.inference.predictions import BASE_COLUMNS
from facefactors.ipd.config import SEVEN_CLASSES
from inference_helpers import SIZE, save_tiny_checkpoint, tiny_model

# Hand-set C_exp bias: every face gets softmax(BIAS); the largest entry is "happy".
BIAS = [0.0, 2.0, 1.0, -1.0, 0.5, 0.0, -2.0]
_Z = sum(math.exp(b) for b in BIAS)
EXPECTED = {c: math.exp(b) / _Z for c, b in zip(SEVEN_CLASSES, BIAS)}


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "empty-home"))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def _aligned(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1


def test_aligned_tensors_need_no_detector(tmp_path, no_weights):
    rec = ExpressionRecognizer.from_checkpoint(save_tiny_checkpoint(tmp_path / "m.pt", BIAS))
    preds = rec.predict(_aligned(3))
    assert len(preds) == 3 and rec.classes == SEVEN_CLASSES
    for k, p in enumerate(preds):
        assert (p.source, p.frame, p.face_index) == ("input[0]", None, k)
        assert p.box is None and p.landmarks is None and p.yaw is None and p.pose_bin is None
        assert p.label == "happy" and p.score == pytest.approx(EXPECTED["happy"], abs=1e-6)
        assert p.probabilities == pytest.approx(EXPECTED, abs=1e-6)
    # The detector was never needed above; an image does need it.
    with pytest.raises(WeightsError, match="facefactors weights fetch mtcnn"):
        rec.predict(np.zeros((64, 64, 3), np.uint8))


def test_probabilities_are_the_classifier_softmax(ckpt, no_weights):
    rec = ExpressionRecognizer.from_checkpoint(ckpt, batch_size=2)  # 5 faces: 3 batches
    x = _aligned(5, seed=1)
    with torch.no_grad():
        expected = torch.softmax(rec.classifier(x), 1).numpy()
    preds = rec.predict([x, x[0]])  # a batch, then one (3, S, S) face
    assert len(preds) == 6 and [p.source for p in preds] == ["input[0]"] * 5 + ["input[1]"]
    got = np.array([[p.probabilities[c] for c in rec.classes] for p in preds])
    np.testing.assert_allclose(got, np.vstack([expected, expected[:1]]), atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)
    assert [p.label for p in preds[:5]] == [SEVEN_CLASSES[i] for i in expected.argmax(1)]
    assert [p.score for p in preds[:5]] == pytest.approx(list(expected.max(1)), abs=1e-6)


class _OneFaceDetector:
    """Stands in for MTCNN: every image holds one face with the given landmarks."""

    landmarks = np.zeros((5, 2), np.float32)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def detect(self, images):
        lm = self.landmarks
        box = np.array([[*lm.min(0) - 10, *lm.max(0) + 10, 0.99]], np.float32)
        return [(box, lm[None]) for _ in images]


def test_photo_probabilities_are_the_softmax_of_rgb_scaled_to_unit_range(
    ckpt, tmp_path, monkeypatch
):
    """Photo -> aligned uint8 RGB crop -> (x/255 - 0.5)/0.5, NCHW -> E_exp + C_exp -> softmax."""
    from PIL import Image

    from facefactors.constants import arcface_template
    from facefactors.export.quantize import synthetic_calibration
    from facefactors.faces import mtcnn
    from facefactors.faces.align import align_face

    # A synthetic face (aligned like a real one at 64 px) pasted into a larger photo.
    face = synthetic_calibration(64, 1, seed=3)[0]  # (3, 64, 64) in [-1, 1]
    photo = np.full((80, 96, 3), 90, np.uint8)
    photo[8:72, 20:84] = np.round((face.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    landmarks = (arcface_template(64) + [20, 8]).astype(np.float32)
    monkeypatch.setattr(_OneFaceDetector, "landmarks", landmarks)
    monkeypatch.setattr(mtcnn, "MTCNN", _OneFaceDetector)
    Image.fromarray(photo).save(tmp_path / "face.png")

    # The expected probabilities, built here from the training-side model.
    model, _cfg = tiny_model(seed=0)  # the weights saved in `ckpt`
    crop = align_face(photo, landmarks, SIZE)  # (S, S, 3) uint8 RGB

    def probs(hwc: np.ndarray) -> np.ndarray:
        x = (torch.from_numpy(hwc.copy()).float() / 255 - 0.5) / 0.5
        with torch.no_grad():
            return torch.softmax(model.classify(x.permute(2, 0, 1)[None]), 1)[0].numpy()

    expected = probs(crop)
    # Blue-green-red, or [0, 1] pixels, would give other probabilities.
    assert np.abs(probs(crop[:, :, ::-1]) - expected).max() > 1e-3
    with torch.no_grad():
        unit = torch.from_numpy(crop.copy()).float().permute(2, 0, 1)[None] / 255
        assert np.abs(torch.softmax(model.classify(unit), 1)[0].numpy() - expected).max() > 1e-3

    rec = ExpressionRecognizer.from_checkpoint(ckpt)
    preds = rec.predict([photo, Image.fromarray(photo), tmp_path / "face.png"])
    assert len(preds) == 3
    for p in preds:
        got = np.array([p.probabilities[c] for c in rec.classes])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert p.label == rec.classes[int(expected.argmax())]


def test_training_checkpoint_predicts_like_the_export(tmp_path, no_weights):
    from facefactors.checkpoint import save_checkpoint
    from facefactors.ipd.export import inference_state
    from facefactors.ipd.train import save_run_state

    model, cfg = tiny_model(seed=3)
    save_checkpoint(tmp_path / "model.pt", inference_state(model, cfg))
    # No optimiser phases: the recogniser reads only the config, classes and weights.
    save_run_state(tmp_path / "last.pt", cfg, model, [], step=0, epoch=0, batch_in_epoch=0)
    x = _aligned(4, seed=2)
    a = ExpressionRecognizer.from_checkpoint(tmp_path / "model.pt").predict(x)
    b = ExpressionRecognizer.from_checkpoint(tmp_path / "last.pt").predict(x)
    assert [p.probabilities for p in a] == [p.probabilities for p in b]


def test_bad_inputs_name_the_problem(ckpt, no_weights):
    rec = ExpressionRecognizer.from_checkpoint(ckpt)
    with pytest.raises(DataError, match=r"\(B, 3, 32, 32\)"):
        rec.predict(torch.zeros(2, 3, 16, 16))
    with pytest.raises(DataError, match=r"\[-1, 1\]"):
        rec.predict(torch.full((1, 3, SIZE, SIZE), 200.0))
    with pytest.raises(DataError, match="input 1 has unsupported type int"):
        rec.predict([_aligned(1), 5])
    with pytest.raises(DataError, match="uint8"):
        rec.predict(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(DataError, match="does not exist"):
        rec.predict("no/such/photo.jpg")


def test_table_csv_and_json(tmp_path, no_weights):
    rec = ExpressionRecognizer.from_checkpoint(save_tiny_checkpoint(tmp_path / "m.pt", BIAS))
    preds = rec.predict(_aligned(2))
    df = preds.to_dataframe()
    assert list(df.columns) == [*BASE_COLUMNS, *(f"p_{c}" for c in SEVEN_CLASSES)]
    assert df["label"].tolist() == ["happy", "happy"] and df["face"].tolist() == [0, 1]
    assert df["frame"].isna().all() and df["x1"].isna().all()

    back = pd.read_csv(preds.to_csv(tmp_path / "p.csv"))
    assert list(back.columns) == list(df.columns) and len(back) == 2
    np.testing.assert_allclose(back["p_happy"], EXPECTED["happy"], rtol=1e-5)

    doc = json.loads(preds.to_json(tmp_path / "p.json").read_text())
    assert doc["classes"] == SEVEN_CLASSES and len(doc["faces"]) == 2
    face = doc["faces"][1]
    assert face["face"] == 1 and face["box"] is None and face["label"] == "happy"
    assert face["probabilities"] == pytest.approx(EXPECTED, abs=1e-6)

    empty = rec.predict([]).to_dataframe()
    assert len(empty) == 0 and list(empty.columns) == list(df.columns)


@pytest.fixture(scope="module")
def recognizer(ckpt, mtcnn_weights_dir):
    return ExpressionRecognizer.from_checkpoint(ckpt, weights_dir=mtcnn_weights_dir)


def test_real_photos_one_face_each(recognizer, tmp_path):
    from PIL import Image

    pytest.importorskip("skimage", reason="scikit-image provides the astronaut photo")
    path = tmp_path / "grace_hopper.png"
    Image.fromarray(samples.grace_hopper()).save(path)
    astronaut = samples.astronaut()
    preds = recognizer.predict([path, astronaut, Image.fromarray(astronaut)])
    assert [p.source for p in preds] == [str(path), "input[1]", "input[2]"]
    for p in preds:
        x1, y1, x2, y2 = p.box
        assert p.face_index == 0 and 80 < x2 - x1 and 80 < y2 - y1
        assert np.all((p.landmarks >= [x1, y1]) & (p.landmarks <= [x2, y2]))
        assert p.det_score > 0.99 and p.pose_bin in range(5) and abs(p.yaw) < 20
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # The array and the PIL image of the same photo give the same face.
    assert preds[1].probabilities == pytest.approx(preds[2].probabilities, abs=1e-6)
    assert not preds.to_dataframe()[["x1", "y1", "x2", "y2", "yaw"]].isna().any().any()


def test_stack_of_frames_blank_image_and_video(recognizer, tmp_path):
    from facefactors.bench.video import moving_frames, write_video

    frames = np.stack(moving_frames(4, (320, 240)))
    preds = recognizer.predict([frames[0], np.full((120, 160, 3), 128, np.uint8), frames[1]])
    assert [p.source for p in preds] == ["input[0]", "input[2]"]  # the blank image has none
    assert len(recognizer.predict(frames[:2])) == 2  # a (B, H, W, 3) stack is B images

    video = write_video(list(frames), tmp_path)
    preds = recognizer.predict([video, frames[0]])
    assert [(p.source, p.frame) for p in preds] == [(str(video), k) for k in range(4)] + [
        ("input[1]", None)
    ]


def test_tracker_follows_the_face_and_redetects_when_lost(recognizer):
    from facefactors.bench.video import moving_frames
    from facefactors.inference.tracking import FaceTracker

    mtcnn = recognizer.pipeline.mtcnn
    tracker = FaceTracker(mtcnn, detect_every=3)
    for frame in moving_frames(6, (320, 240)):
        boxes, landmarks = tracker.update(frame)
        ref_boxes, ref_landmarks = mtcnn.detect(frame)[0]
        assert boxes.shape == (1, 5) and boxes[0, 4] > 0.9
        # Measured: O-Net alone lands within 2.3 px of the full cascade's landmarks on
        # this ~75 px face moving ~12 px per frame (3.6 px on the 640x480 bench video).
        assert np.abs(landmarks - ref_landmarks).max() < 3.5
    assert (tracker.full_detections, tracker.refinements) == (2, 4)

    blank = np.full((240, 320, 3), 90, np.uint8)
    assert len(tracker.update(blank)[0]) == 0  # lost: a full detection on this frame
    assert tracker.full_detections == 3
    assert len(tracker.update(blank)[0]) == 0  # nothing to follow, not a key frame
    assert tracker.full_detections == 3
