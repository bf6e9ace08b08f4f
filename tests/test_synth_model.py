"""Synthetic faces: SH shading, AU prototypes, factor sampling and the splatting z-buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.constants import CANONICAL_CLASSES, pose_bin
from facefactors.synth import expression as E
from facefactors.synth import render as R
from facefactors.synth import sampling as SM
from facefactors.synth.shading import (
    SH_ODD_IN_X,
    ambient_sh,
    directional_sh,
    mirror_sh,
    sh_shading,
    sh_shading_maps,
)


def test_sh_uniform_light_is_constant():
    sh = ambient_sh(torch.tensor([[0.5, 0.7, 0.9]]))  # (1, 3, 9)
    n = torch.nn.functional.normalize(torch.randn(1, 50, 3), dim=-1)
    e = sh_shading(n, sh)
    assert torch.allclose(e, torch.tensor([0.5, 0.7, 0.9]).expand(1, 50, 3), atol=1e-6)


def test_sh_directional_light_hand_values():
    # Light of strength 1 along +z. Facing it: c4*Y00 + 2*c2*Y1 + (c3 - c5)*Y20*2
    # = 0.25 + 0.5 + 0.3125; facing away: 0.25 - 0.5 + 0.3125.
    sh = directional_sh(torch.tensor([[0.0, 0.0, 1.0]]), torch.ones(1, 3))
    n = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]])
    e = sh_shading(n, sh)[0, :, 0]
    assert e[0].item() == pytest.approx(1.0625, abs=2e-4)
    assert e[1].item() == pytest.approx(0.0625, abs=2e-4)
    # Sideways (z = 0): c4*L00 - c5*L20 with L20 = 2*Y20 = 0.630784: 0.25 - 0.15625.
    assert e[2].item() == pytest.approx(0.09375, abs=2e-4)


def test_sh_maps_layout_matches_channels_last():
    sh = torch.randn(2, 3, 9)
    n = torch.nn.functional.normalize(torch.randn(2, 3, 4, 5), dim=1)
    a = sh_shading_maps(n, sh)
    b = sh_shading(n.permute(0, 2, 3, 1), sh).permute(0, 3, 1, 2)
    assert torch.allclose(a, b, atol=1e-5)


def test_mirror_sh_mirrors_shading():
    sh = torch.randn(1, 3, 9)
    n = torch.nn.functional.normalize(torch.randn(1, 40, 3), dim=-1)
    flipped = n * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(sh_shading(flipped, mirror_sh(sh)), sh_shading(n, sh), atol=1e-5)
    assert SH_ODD_IN_X == (3, 4, 7)  # L11, L2-2, L21


def test_au_prototypes_table():
    assert E.AU_PROTOTYPES == {
        "neutral": {},
        "happy": {6: 1.0, 12: 1.0},
        "sad": {1: 1.0, 4: 1.0, 15: 1.0},
        "surprise": {1: 1.0, 2: 1.0, 5: 1.0, 26: 1.0},
        "fear": {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 7: 1.0, 20: 1.0, 26: 1.0},
        "disgust": {9: 1.0, 15: 1.0, 16: 1.0},
        "anger": {4: 1.0, 5: 1.0, 7: 1.0, 23: 1.0},
        "contempt": {12: 1.0, 14: 1.0},
    }
    assert set(E.AU_PROTOTYPES) == set(CANONICAL_CLASSES)
    required = {1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 25, 26, 43}
    assert required <= set(E.AU_IDS)


@pytest.mark.parametrize("cls", CANONICAL_CLASSES)
def test_sampled_expression_follows_its_prototype(cls):
    cfg = SM.SynthConfig(expression_intensity=(0.5, 1.0), au_noise=0.05)
    for k in range(20):
        coeffs, intensity = SM.sample_expression(SM.sample_rng(3, k), cls, cfg)
        per_side = coeffs.reshape(E.NUM_AUS, 2)
        proto = E.AU_PROTOTYPES[cls]
        for i, au in enumerate(E.AU_IDS):
            if au in proto:
                active = per_side[i][per_side[i] > 0]
                assert np.all(active >= 0.9 * 0.5) and np.all(active <= 1.1 * 1.0)
                sides = int((per_side[i] > 0).sum())
                assert sides == (1 if cls in E.UNILATERAL_CLASSES else 2)
            else:
                assert np.all(per_side[i] < 0.35)  # only small noise elsewhere
        assert 0.5 <= intensity <= 1.0


def test_contempt_is_one_sided_and_au_vector_takes_the_stronger_side():
    coeffs, _ = SM.sample_expression(SM.sample_rng(1, 2), "contempt", SM.SynthConfig(au_noise=0))
    per_side = coeffs.reshape(E.NUM_AUS, 2)
    i12 = E.au_index(12)
    assert (per_side[i12] > 0).sum() == 1
    au = SM.au_intensity(coeffs)
    assert au[i12] == per_side[i12].max()


def test_pose_distribution_matches_rafdb_shares():
    cfg = SM.SynthConfig()
    poses = np.array([SM.sample_pose(SM.sample_rng(0, 9, i), cfg) for i in range(2000)])
    shares = np.bincount([pose_bin(y) for y in poses[:, 0]], minlength=5) / len(poses)
    target = np.array(cfg.yaw_bin_weights) / sum(cfg.yaw_bin_weights)
    assert np.all(np.abs(shares - target) < 0.04), shares
    assert np.abs(poses[:, 0]).max() <= 60 and np.abs(poses[:, 1]).max() <= 20
    assert np.abs(poses[:, 2]).max() <= 15
    assert 0.35 < (poses[:, 0] > 0).mean() < 0.65  # both signs


def test_bad_config_is_rejected():
    from facefactors.errors import ConfigError

    with pytest.raises(ConfigError, match="classes"):
        SM.SynthConfig(classes=("joy",))
    with pytest.raises(ConfigError, match="expression_intensity"):
        SM.SynthConfig(expression_intensity=(0.8, 0.2))


def test_zbuffer_keeps_the_nearest_surface():
    # Two 6x6 sample sheets over the same pixels at depths 5 and 9: whichever
    # is splatted first, every covered pixel shows the nearer (larger depth) one.
    size = 8
    g = torch.stack(torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="xy"), 0)
    sheet = g.reshape(2, -1) + 1.5
    far = torch.cat([sheet, torch.full((1, 36), 5.0)])
    near = torch.cat([sheet, torch.full((1, 36), 9.0)])
    bits = R.index_bits(72)
    for order in ((far, 0, near, 36), (near, 36, far, 0)):
        buf = R.new_zbuffer(1, size)
        R.splat_into(buf, *R.splat_keys(order[0][None], order[1], size, bits))
        R.splat_into(buf, *R.splat_keys(order[2][None], order[3], size, bits))
        w = R.resolve(buf, 1, size, bits)[0]
        covered = w >= 0
        assert covered.sum() >= 36
        assert torch.all(w[covered] >= 36)  # the near sheet's indices


def test_splat_pixel_convention_and_out_of_frame():
    # A sample at (3.5, 2.5) sits on the centre of pixel (row 2, col 3); far
    # out-of-frame samples land nowhere.
    pts = torch.tensor([[[3.5, -40.0], [2.5, 90.0], [1.0, 1.0]]])
    bits = R.index_bits(2)
    buf = R.new_zbuffer(1, 8)
    R.splat_into(buf, *R.splat_keys(pts, 0, 8, bits))
    w = R.resolve(buf, 1, 8, bits)[0]
    assert w[2, 3] == 0
    assert int((w == 1).sum()) == 0
    assert int((w == 0).sum()) == 4  # the 2x2 footprint


@pytest.mark.parametrize("size", [32, 64])
def test_every_rendered_sample_has_two_tangents(size):
    from facefactors.synth.facemodel import face_model

    m = face_model(size)
    own = torch.arange(m.num_vertices)
    rendered = slice(m.first_render, None)
    no_u = (m.nbr[0] == own) & (m.nbr[1] == own)
    no_v = (m.nbr[2] == own) & (m.nbr[3] == own)
    assert not no_u[rendered].any() and not no_v[rendered].any()
    assert m.regions.shape == (m.num_render, m.regions.shape[1])
    # albedo weights are a partition of unity before the additive layers
    from facefactors.synth.albedo import LAYERED

    layered = m.regions[:, : 1 + len(LAYERED)].sum(1)
    assert torch.allclose(layered, torch.ones_like(layered), atol=1e-4)
