"""Synthetic faces: rendered geometry, pose conventions, alignment and identity dominance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.constants import CANONICAL_CLASSES, arcface_template
from facefactors.synth import expression as E
from facefactors.synth import sampling as SM
from facefactors.synth.dataset import exp_from_au, identity_coeffs, render_face
from facefactors.synth.shading import mirror_sh

SIZE = 64


@pytest.fixture(scope="module")
def light():
    return SM.sample_light(SM.sample_rng(5, 1), SM.SynthConfig())


def test_sizes_and_value_ranges():
    for size in (32, SIZE):
        r = render_face(identity_coeffs(0, 1), au={12: 0.8}, yaw=20, size=size)
        assert r["image"].shape == (3, size, size) and r["mask"].shape == (1, size, size)
        for k in ("image", "neutral", "frontal_neutral"):
            assert r[k].dtype == torch.float32
            assert r[k].min() >= -1.0 and r[k].max() <= 1.0
        assert r["landmarks5"].shape == (5, 2) and r["sh"].shape == (3, 9)


def test_normals_mask_and_frame(light):
    r = render_face(
        identity_coeffs(0, 2), au={26: 1.0}, yaw=35, pitch=10, roll=-8, sh=light, size=SIZE
    )
    mask = r["mask"][0]
    inside = mask > 0
    assert inside.float().mean() > 0.3  # a face, not a speck
    norms = r["normals"].norm(dim=0)
    assert torch.allclose(norms[inside], torch.ones(int(inside.sum())), atol=1e-4)
    assert torch.all(norms[~inside] == 0)
    lm = r["landmarks5"]
    assert torch.all((lm > 2) & (lm < SIZE - 2))  # the face is inside the frame
    # the image is exactly the composite of its maps (up to clipping to [0, 1])
    comp = r["albedo"] * r["shading"] * r["mask"] + r["background"] * (1 - r["mask"])
    assert torch.allclose((r["image"] + 1) / 2, comp.clamp(0, 1), atol=1e-5)


def test_landmarks_on_template_inside_mask_and_ordered():
    r = render_face(size=112)
    lm = r["landmarks5"].numpy()
    assert np.abs(lm - arcface_template(112)).max() < 3.0
    for yaw in (0.0, 30.0, -45.0):
        r = render_face(identity_coeffs(0, 4), au={12: 0.7}, yaw=yaw, size=SIZE)
        lm = r["landmarks5"].numpy()
        px = np.clip(np.rint(lm - 0.5).astype(int), 0, SIZE - 1)
        assert np.all(r["mask"][0][px[:, 1], px[:, 0]].numpy() > 0.5)
        eyes_y, nose_y, mouth_y = lm[:2, 1].max(), lm[2, 1], lm[3:, 1].min()
        assert eyes_y < nose_y < mouth_y
    r = render_face(identity_coeffs(0, 4), size=SIZE)
    lm = r["landmarks5"].numpy()
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]


def test_positive_yaw_turns_the_face_to_image_right(light):
    nose_x, normal_x = [], []
    for yaw in (-40.0, -15.0, 0.0, 15.0, 40.0):
        r = render_face(identity_coeffs(0, 3), yaw=yaw, sh=light, size=SIZE)
        lm = r["landmarks5"]
        nose_x.append(float(lm[2, 0] - lm[:2, 0].mean()))
        x0, y0 = lm.min(0).values.long().tolist()
        x1, y1 = (lm.max(0).values.long() + 1).tolist()
        # orientation of the rendered surface over the face (eyes to mouth)
        normal_x.append(float(r["normals"][0, y0:y1, x0:x1].mean()))
    assert np.all(np.diff(nose_x) > 0)
    assert np.all(np.diff(normal_x) > 0)
    assert normal_x[0] < -0.1 and normal_x[-1] > 0.1


@pytest.mark.parametrize("yaw", [25.0, 50.0])
def test_mirror_of_yaw_is_negative_yaw_with_mirrored_light(light, yaw):
    idc = identity_coeffs(0, 6)  # identity fields are left-right symmetric
    a = render_face(idc, yaw=yaw, sh=light, size=SIZE)["image"]
    b = render_face(idc, yaw=-yaw, sh=mirror_sh(torch.tensor(light)).numpy(), size=SIZE)["image"]
    diff = (a.flip(-1) - b).abs()
    assert diff.mean() < 0.03
    # and the mirror is not trivially equal to the unmirrored render
    assert (a - b).abs().mean() > 5 * diff.mean()


def test_unilateral_expression_mirrors_to_the_other_side():
    idc = identity_coeffs(0, 7)
    front = SM.lights_to_sh(np.full(3, 0.5), [(np.array([0.0, 0.3, 1.0]), np.full(3, 0.6))])
    right = exp_from_au({12: 1.0, 14: 1.0}).reshape(E.NUM_AUS, 2)
    left = right.copy()
    right[:, 1] = 0.0
    left[:, 0] = 0.0
    a = render_face(idc, exp_coeffs=right.reshape(-1), sh=front, size=SIZE)["image"]
    b = render_face(idc, exp_coeffs=left.reshape(-1), sh=front, size=SIZE)["image"]
    assert (a.flip(-1) - b).abs().mean() < 0.5 * (a - b).abs().mean()


def test_zero_expression_image_equals_neutral():
    r = render_face(identity_coeffs(0, 8), yaw=12, pitch=-6, size=SIZE)
    assert torch.equal(r["image"], r["neutral"])
    r = render_face(identity_coeffs(0, 8), au={26: 1.0}, yaw=12, size=SIZE)
    assert not torch.equal(r["image"], r["neutral"])


def test_expressions_move_the_texture():
    idc = identity_coeffs(0, 9)
    base = render_face(idc, size=112)
    eye = base["landmarks5"][0].round().long()
    closed = render_face(idc, au={43: 1.0}, size=112)
    # the pupil (dark) is covered by the lid (skin) when the eyes close
    pupil = base["albedo"][:, eye[1], eye[0]].mean()
    lid = closed["albedo"][:, eye[1], eye[0]].mean()
    assert lid > pupil + 0.2
    # the open mouth shows teeth (white) and the dark mouth interior where the lips met
    cx, cy = base["landmarks5"][3:].mean(0).round().long().tolist()

    def interior_pixels(r):
        alb = r["albedo"][:, cy - 8 : cy + 9, cx - 10 : cx + 11]
        teeth = alb.min(0).values > 0.75
        cavity = alb.max(0).values < 0.13
        return int((teeth | cavity).sum())

    assert interior_pixels(base) <= 2
    assert interior_pixels(render_face(idc, au={26: 1.0}, size=112)) >= 15


def test_identity_dominates_expression():
    ids = [identity_coeffs(0, i) for i in range(5)]
    imgs = np.zeros((len(ids), len(CANONICAL_CLASSES), 3, 32, 32))
    for i, idc in enumerate(ids):
        for e, cls in enumerate(CANONICAL_CLASSES):
            au = {a: 0.9 * w for a, w in E.AU_PROTOTYPES[cls].items()}
            imgs[i, e] = render_face(idc, au=au, size=32)["image"].numpy()
    between_identity = imgs.mean(axis=1).var(axis=0).mean()
    between_expression = imgs.mean(axis=0).var(axis=0).mean()
    assert between_identity > 3 * between_expression
