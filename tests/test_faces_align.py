"""Similarity transform (Umeyama) and template alignment on hand-made points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facefactors.constants import arcface_template
from facefactors.errors import DataError
from facefactors.faces.align import align_face, similarity_transform, transform_points

SRC = np.array([[10.0, 20.0], [40.0, 22.0], [27.0, 41.0], [14.0, 60.0], [39.0, 61.0]])


def _similarity(scale, angle_deg, tx, ty):
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


@pytest.mark.parametrize(
    "scale,angle,tx,ty", [(1.0, 0.0, 0.0, 0.0), (2.5, 30.0, -7.0, 12.5), (0.3, -135.0, 100.0, -3.0)]
)
def test_known_similarity_is_recovered_exactly(scale, angle, tx, ty):
    m = _similarity(scale, angle, tx, ty)
    dst = SRC @ m[:, :2].T + m[:, 2]
    est = similarity_transform(SRC, dst)
    np.testing.assert_allclose(est, m, atol=1e-9)
    np.testing.assert_allclose(transform_points(est, SRC), dst, atol=1e-9)


def test_hand_computed_two_points():
    # (0,0)->(1,1) and (1,0)->(1,3): scale 2, rotation +90 degrees, translation (1,1).
    est = similarity_transform(
        np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 3.0]])
    )
    np.testing.assert_allclose(est, [[0.0, -2.0, 1.0], [2.0, 0.0, 1.0]], atol=1e-12)


def test_no_reflection_for_mirrored_points():
    mirrored = SRC * np.array([-1.0, 1.0])
    est = similarity_transform(SRC, mirrored)
    assert np.linalg.det(est[:, :2]) > 0  # a proper rotation times a positive scale
    # A least-squares fit to a mirror image cannot be exact.
    assert np.abs(transform_points(est, SRC) - mirrored).max() > 1.0


def test_least_squares_with_noise_beats_perturbed_transforms():
    rng = np.random.default_rng(0)
    m = _similarity(1.7, 12.0, 5.0, -4.0)
    dst = SRC @ m[:, :2].T + m[:, 2] + rng.normal(scale=0.5, size=SRC.shape)
    est = similarity_transform(SRC, dst)

    def sse(mat):
        return ((transform_points(mat, SRC) - dst) ** 2).sum()

    scale = math.hypot(est[0, 0], est[1, 0])
    angle = math.degrees(math.atan2(est[1, 0], est[0, 0]))
    for d in rng.normal(scale=1e-2, size=(20, 4)):
        pert = _similarity(scale * (1 + d[0]), angle + d[1], est[0, 2] + d[2], est[1, 2] + d[3])
        assert sse(pert) > sse(est)


@pytest.mark.parametrize(
    "src",
    [
        np.full((5, 2), 3.0),
        np.where(np.arange(10).reshape(5, 2) == 3, np.nan, SRC),
        np.where(np.arange(10).reshape(5, 2) == 0, np.inf, SRC),
    ],
)
def test_degenerate_points_raise(src):
    with pytest.raises(DataError, match="similarity_transform"):
        similarity_transform(src, SRC)


def test_shape_mismatch_raises():
    with pytest.raises(DataError, match="shapes"):
        similarity_transform(SRC, SRC[:4])


@pytest.mark.parametrize("size", [112, 64])
def test_align_face_puts_landmarks_on_template(size):
    # Draw five bright dots at the template transformed by a known similarity, then
    # align: the dots must come back to the template positions.
    template = arcface_template(112)
    m = _similarity(1.6, 20.0, 30.0, 10.0)
    lm = transform_points(m, template)
    image = np.zeros((300, 300, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:300, 0:300]
    for x, y in lm:
        image[(xx - x) ** 2 + (yy - y) ** 2 <= 9] = 255
    out = align_face(image, lm, size)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8
    target = arcface_template(size)
    oy, ox = np.mgrid[0:size, 0:size]
    for tx, ty in target:
        near = (ox - tx) ** 2 + (oy - ty) ** 2 <= (3 * size / 112) ** 2
        w = out[..., 0].astype(float) * near
        cx, cy = (w * ox).sum() / w.sum(), (w * oy).sum() / w.sum()
        assert abs(cx - tx) < 0.5 and abs(cy - ty) < 0.5


def test_align_face_rejects_bad_image():
    with pytest.raises(DataError, match="uint8"):
        align_face(np.zeros((50, 50, 3), np.float32), arcface_template(112))
    with pytest.raises(DataError, match=r"\(5, 2\)"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)))


def test_similarity_transform_in_3d_recovers_a_known_motion() -> None:
    """The same Umeyama fit aligns meshes: scale, proper rotation and shift recovered."""
    from facefactors.faces.align import similarity_transform
    from facefactors.synth.scene import rotation_matrix

    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3))
    rot = rotation_matrix(np.array([30.0]), np.array([-10.0]), np.array([5.0]))[0]
    dst = 1.7 * src @ rot.T + np.array([1.0, -2.0, 3.0])
    m = similarity_transform(src, dst)
    assert m.shape == (3, 4)
    np.testing.assert_allclose(m[:, :3], 1.7 * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 3], [1.0, -2.0, 3.0], atol=1e-9)
    mirrored = src * np.array([-1.0, 1.0, 1.0])  # no proper rotation maps src onto it
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :3]) > 0
