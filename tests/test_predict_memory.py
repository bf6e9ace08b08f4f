"""Peak memory of `facefactors predict` is bounded by the batch, whatever the image sizes.

The default tests check the two mechanisms on small images with a small pixel cap
(detection on a bounded copy; batches bounded by pixels); the ``slow`` one measures
the child process's peak RSS on six 8000x6000 photos (tests/predict_memory.py).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facefactors.faces import mtcnn as M
from facefactors.faces import samples
from inference_helpers import save_tiny_checkpoint


def test_a_large_image_is_detected_on_a_bounded_copy(mtcnn_weights_dir, monkeypatch) -> None:
    gh = samples.grace_hopper()
    big = cv2.resize(
        gh, (gh.shape[1] * 5 // 2, gh.shape[0] * 5 // 2), interpolation=cv2.INTER_CUBIC
    )
    cap = gh.shape[0] * gh.shape[1]
    small = M.downscale_for_detection(big, cap)
    assert small.shape == gh.shape  # 2.5x up, then 0.4x down
    # 20 px faces of the large image are 8 px in the copy: P-Net's 12 px window is the floor.
    ref, ref_lm = M.MTCNN(mtcnn_weights_dir, min_face_size=12).detect(small)[0]
    det = M.MTCNN(mtcnn_weights_dir, max_pixels=cap)
    seen: list[tuple[int, ...]] = []
    real = det._detect_batch

    def spy(images, min_face):
        seen.append(images.shape)
        return real(images, min_face)

    monkeypatch.setattr(det, "_detect_batch", spy)
    boxes, landmarks = det.detect(big)[0]
    assert len(seen) == 1 and seen[0][1] * seen[0][2] <= gh.shape[0] * gh.shape[1]
    assert len(boxes) == len(ref) == 1
    # Boxes and landmarks come back in the large image's pixels: 2.5x the original's.
    np.testing.assert_allclose(
        boxes[0, :4], ref[0, :4] * 2.5, atol=0.04 * (ref[0, 2] - ref[0, 0]) * 2.5
    )
    assert landmarks.shape == (1, 5, 2)


def test_predict_batches_are_bounded_by_pixels(tmp_path, mtcnn_weights_dir, monkeypatch) -> None:
    """With a 0.1 MP cap and --batch 4, 0.3 MP images go through detection one by one."""
    from PIL import Image

    from facefactors.inference.recognizer import ExpressionRecognizer
    from inference_helpers import run_cli

    monkeypatch.setattr(M, "DETECT_MAX_PIXELS", 100_000)
    gh = samples.grace_hopper()  # 600x512 = 0.31 MP
    for k in range(3):
        Image.fromarray(gh).save(tmp_path / f"{k}.png")
    Image.fromarray(gh[:200, :200]).save(tmp_path / "3.png")  # 0.04 MP
    calls: list[list[int]] = []
    real = ExpressionRecognizer.predict_arrays

    def spy(self, images, sources, frames=None):
        calls.append([im.shape[0] * im.shape[1] for im in images])
        return real(self, images, sources, frames)

    monkeypatch.setattr(ExpressionRecognizer, "predict_arrays", spy)
    ckpt = save_tiny_checkpoint(tmp_path / "model.pt")
    argv = ["predict", *(str(tmp_path / f"{k}.png") for k in range(4))]
    argv += ["--checkpoint", str(ckpt), "--out", str(tmp_path / "r.csv")]
    assert run_cli([*argv, "--weights", mtcnn_weights_dir, "--batch", "4"]) == 0
    # Budget 4 x 0.1 MP: one 0.31 MP image fits, a second would not; the small one joins.
    assert calls == [[307200], [307200], [307200, 40000]]


@pytest.mark.slow
def test_six_8000x6000_photos_stay_under_3_gib(mtcnn_weights_dir) -> None:
    """Measured 1.75 GiB here (the code before this bound: 6.0 GiB for two of them)."""
    from predict_memory import measure

    result = measure(6, 8000, 6000, mtcnn_weights_dir)
    assert result["returncode"] == 0, result["stderr"]
    assert len(result["rows"]) >= 6
    assert result["peak_rss_mib"] < 3 * 1024, result
