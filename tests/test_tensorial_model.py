"""Tensorial model: shapes, unpooling, shading through synth.shading, presets, Z_0, D."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from facefactors.config import from_dict, to_dict
from facefactors.errors import ConfigError
from facefactors.synth import shading as SH
from facefactors.tensorial import config as C
from facefactors.tensorial import ops
from facefactors.tensorial.model import (
    TensorialModel,
    Z0AutoEncoder,
    build_model,
    compose,
    normals_from_maps,
)
from facefactors.tensorial.nets import Encoder, PoolState


def tiny(**kw) -> C.TensorialModelConfig:
    base = dict(
        image_size=32,
        enc_channels=[4, 4, 4],
        code_dim=16,
        z_b=8,
        z_m=8,
        k_id=6,
        k_exp=3,
        disc_channels=[4, 4, 4],
        disc_code=8,
    )
    return C.TensorialModelConfig(**(base | kw))


def _x(n=2, s=32, seed=0):
    return torch.rand(n, 3, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_encoder_feature_map_is_24x8x8_at_64px():
    enc = Encoder([96, 48, 24], 64, 128, 1e-6)
    with torch.no_grad():
        feat, state = enc.forward_features(_x(2, 64))
    assert feat.shape == (2, 24, 8, 8)
    assert [t.shape[1:] for t in state.indices] == [(96, 32, 32), (48, 16, 16), (24, 8, 8)]
    assert [t.shape[1:] for t in state.skips] == [(96, 64, 64), (48, 32, 32), (24, 16, 16)]
    z, _ = enc(_x(2, 64))
    assert z.shape == (2, 128) and bool(((z > 0) & (z < 1)).all())
    # Threshold(0, 1e-6): nothing below the threshold value survives.
    assert float(feat.min()) >= 1e-6 - 1e-12


def test_pool_indices_do_not_depend_on_the_input_memory_layout():
    # Crops decoded from uint8 HWC arrays arrive channels-last; a flat background makes
    # ties in the pooling windows, which round-off of another conv kernel would break
    # differently (editor decodes then moved by ~0.02 from the model's own).
    torch.manual_seed(0)
    enc = Encoder([8, 8, 8], 32, 16, 1e-6)
    x = torch.full((4, 3, 32, 32), 0.3)
    x[:, :, 8:24, 8:24] = _x(4, 16)
    nhwc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not nhwc.is_contiguous()
    with torch.no_grad():
        (z, a), (z2, b) = enc(x), enc(nhwc)
    for i, j in zip(a.indices, b.indices):
        assert torch.equal(i, j)
    torch.testing.assert_close(z, z2, atol=0, rtol=0)


@pytest.mark.parametrize("skip", [True, False])
def test_mask_decoder_unpools_with_the_encoders_indices(skip):
    torch.manual_seed(0)
    model = TensorialModel(tiny(skip_connections=skip)).eval()
    codes, state = model.encode(_x())
    with torch.no_grad():
        mask = model.dec_mask(codes.z_m, state)
        # Move every coarsest-level maximum to another position of its 2 × 2 window.
        idx3 = state.indices[2]
        w = state.skips[2].shape[-1]
        row, col = idx3 // w, idx3 % w
        moved = row * w + (col ^ 1)
        other = PoolState([*state.indices[:2], moved], state.skips)
        mask_moved = model.dec_mask(codes.z_m, other)
    assert mask.shape == (2, 1, 32, 32)
    assert not torch.allclose(mask, mask_moved)


def test_forward_shapes_quick_preset():
    cfg = C.quick().model
    model = TensorialModel(cfg)
    out = model(_x(2, cfg.image_size))
    s, v = cfg.image_size, cfg.num_vertices
    assert out.codes.z_l.shape == (2, 3, 9) and out.codes.z_p.shape == (2, 9)
    assert out.feature_2way.shape == out.feature_rotated.shape == (2, cfg.k_exp * cfg.k_id)
    for name in ("albedo", "normals", "shading", "background", "image", "composite", "recon"):
        assert getattr(out, name).shape == (2, 3, s, s), name
    assert out.mask.shape == (2, 1, s, s)
    assert out.frontal.shape == out.frontal_normals.shape == (2, 3, s, s)
    assert out.shape_3d.shape == (2, v, 3)
    assert out.exp_pred.shape == (2, 36) and out.id_pred.shape == (2, 47)
    torch.testing.assert_close(out.recon, 2 * out.composite - 1)
    torch.testing.assert_close(torch.linalg.det(out.rotation), torch.ones(2))
    torch.testing.assert_close(out.normals.norm(dim=1), torch.ones(2, s, s), atol=1e-3, rtol=0)


def test_forward_shapes_paper_preset_on_meta_device():
    cfg = C.paper().model
    with torch.device("meta"):
        model = TensorialModel(cfg)
        out = model(torch.empty(2, 3, 64, 64))
    assert model.q.matrix().shape == (12288, 10800)  # Q_(1): k_x × k_l k_exp k_id
    assert model.b.matrix().shape == (3 * 522, 1200)  # B_(1): k_3d × k_exp k_id
    assert out.recon.shape == out.frontal.shape == out.frontal_normals.shape == (2, 3, 64, 64)
    assert out.shape_3d.shape == (2, 522, 3) and out.feature_rotated.shape == (2, 1200)
    assert out.codes.z_id.shape == (2, 80) and out.codes.z_exp.shape == (2, 15)


@pytest.mark.slow
def test_paper_preset_real_forward():
    cfg = C.paper().model
    torch.manual_seed(0)
    model = TensorialModel(cfg)
    assert sum(p.numel() for p in model.q.parameters()) == 12288 * 10800
    with torch.no_grad():
        out = model(_x(2, 64))
    assert torch.isfinite(out.recon).all() and torch.isfinite(out.frontal).all()


@pytest.mark.parametrize("rank", [None, 5])
def test_frontal_streams_are_q_of_the_khatri_rao_features(rank):
    torch.manual_seed(1)
    model = TensorialModel(tiny(q_rank=rank, b_rank=rank))
    assert model.q.matrix().shape == (3 * 32 * 32, 9 * 3 * 6)
    if rank is not None:
        assert torch.linalg.matrix_rank(model.q.matrix().detach()) == rank
    with torch.no_grad():
        out = model(_x())
        c = out.codes
        q1 = model.q.matrix()
        z_l9 = c.z_l.mean(1)
        want = ops.khatri_rao(z_l9, c.z_exp, c.z_id) @ q1.T
        ones = torch.full_like(z_l9, 1 / 9)
        want_n = ops.khatri_rao(ones, c.z_exp, c.z_id) @ q1.T
        want_3d = ops.khatri_rao(c.z_exp, c.z_id) @ model.b.matrix().T * 100.0
    torch.testing.assert_close(out.frontal.flatten(1), want)
    torch.testing.assert_close(out.frontal_normals.flatten(1), want_n)
    torch.testing.assert_close(out.shape_3d.flatten(1), want_3d)


def test_model_shading_is_synth_sh_shading(monkeypatch):
    torch.manual_seed(2)
    model = TensorialModel(tiny())
    with torch.no_grad():
        out = model(_x())
    normals_hw = out.normals.permute(0, 2, 3, 1)
    want = SH.sh_shading(normals_hw, out.light).permute(0, 3, 1, 2)
    torch.testing.assert_close(out.shading, want)
    torch.testing.assert_close(out.light, out.codes.z_l)
    # The model must call the project's one SH function, not a copy of it.
    calls = []
    real = SH.sh_shading_maps
    monkeypatch.setattr(SH, "sh_shading_maps", lambda n, l: calls.append(1) or real(n, l))
    model(_x())
    assert calls


def test_mono_light_broadcasts_to_rgb():
    model = TensorialModel(tiny(light_channels=1))
    out = model(_x())
    assert out.codes.z_l.shape == (2, 1, 9)
    torch.testing.assert_close(out.light[:, 0], out.light[:, 2])


def test_sh_analytic_cases():
    n = torch.nn.functional.normalize(torch.randn(1, 3, 8, 8), dim=1)
    only_l00 = torch.zeros(1, 3, 9)
    only_l00[:, :, 0] = torch.tensor([0.5, 1.0, 2.0])
    shade = SH.sh_shading_maps(n, only_l00)
    want = SH.C4 * torch.tensor([0.5, 1.0, 2.0])[None, :, None, None].expand(1, 3, 8, 8)
    torch.testing.assert_close(shade, want)
    # A distant light: second-order SH approximates the clamped cosine (max error ≈ 9%).
    dirs = torch.nn.functional.normalize(torch.randn(1, 3, 64, 64), dim=1)
    d = torch.nn.functional.normalize(torch.tensor([0.3, 0.5, 0.8]), dim=0)
    sh = SH.directional_sh(d[None], torch.ones(1, 3))
    err = SH.sh_shading_maps(dirs, sh) - (dirs * d[None, :, None, None]).sum(1, keepdim=True).clamp(
        min=0
    )
    assert float(err.abs().max()) < 0.1 and float(err.abs().mean()) < 0.04


def test_compose_formula():
    g = torch.Generator().manual_seed(3)
    alb, bg = torch.rand(1, 3, 4, 4, generator=g), torch.rand(1, 3, 4, 4, generator=g)
    mask = torch.rand(1, 1, 4, 4, generator=g)
    normals = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    light = torch.zeros(1, 3, 9)
    light[:, :, 0] = 1.5 / SH.C4  # constant shading of 1.5: some pixels saturate
    shading, image, comp = compose(alb, normals, light, mask, bg)
    torch.testing.assert_close(image, (alb * 1.5).clamp(0, 1))
    torch.testing.assert_close(comp, image * mask + bg * (1 - mask))


def test_nfe_normals_gradient_bounded_at_the_rim():
    """NFE's Nz = √(ReLU(1 − Nx² − Ny²) + ε): near the rim √u alone has gradient ~1/(2√u)."""
    raw = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    raw[0, 0] = (1 - 1e-12) ** 0.5  # u = 1e-12
    raw.requires_grad_()
    n = normals_from_maps(raw, "nfe", 1e-6)
    n[:, 2].sum().backward()
    assert float(raw.grad.abs().max()) < 1e3  # plain √u would give ~1e6
    assert float(n.detach()[:, 2].min()) > 0
    torch.testing.assert_close(
        n.norm(dim=1), torch.ones(1, 1, 1, dtype=torch.float64), atol=1e-6, rtol=0
    )
    unit = normals_from_maps(torch.randn(2, 3, 4, 4), "unit", 1e-8)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2, 4, 4))
    model = TensorialModel(tiny(normals="unit"))
    assert model(_x()).normals.shape == (2, 3, 32, 32)


def test_z0_autoencoder_and_discriminator():
    cfg = tiny(variant="z0")
    nets = build_model(cfg)
    assert isinstance(nets.generator, Z0AutoEncoder)
    out = nets.generator(_x())
    assert out.recon.shape == (2, 3, 32, 32) and out.z0.shape == (2, 27 + 9 + 6 + 3)
    assert float(out.recon.detach().abs().max()) <= 1.0
    assert nets.discriminator(_x()).shape == (2, 3, 32, 32)
    assert isinstance(build_model(tiny()).generator, TensorialModel)


def test_presets_and_config_errors():
    p, q = C.paper(), C.quick()
    assert (p.model.k_x, p.model.k_3way) == (12288, 10800)
    assert q.model.image_size < 64 and q.model.k_3way * q.model.k_x < 3_000_000
    d = to_dict(p)
    assert from_dict(C.TensorialConfig, yaml.safe_load(yaml.safe_dump(d))) == p  # YAML-ready
    assert C.preset("tensorial_synth_quick", ["model.k_id=12"]).model.k_id == 12
    assert C.quick().model.k_id == 16
    with pytest.raises(ConfigError, match="model.nope"):
        C.preset("tensorial_synth_quick", ["model.nope=1"])
    with pytest.raises(ConfigError, match="synth_val_identities"):
        C.preset("tensorial_synth_quick", ["data.synth_val_identities=0"])
    with pytest.raises(ConfigError, match="divisible by 3"):
        C.validate(dataclasses.replace(p, model=tiny(k_id=5, k_exp=5)))
    with pytest.raises(ConfigError, match="preset"):
        C.preset("huge")


def test_bf16_autocast_forward_backward_is_finite():
    torch.manual_seed(4)
    model = TensorialModel(tiny())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(_x())
        loss = out.recon.float().pow(2).mean() + out.frontal.float().pow(2).mean()
    loss.backward()
    assert out.rotation.dtype == torch.float32
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_renderer_and_model_shade_the_same_normals_identically():
    """One SH convention for the project: the synthetic renderer's shading map is the
    model's shading function applied to the renderer's own normals and light."""
    from facefactors.synth.dataset import SynthFaces
    from facefactors.tensorial.model import compose

    b = SynthFaces("train", 2, 1, size=32, seed=3).batch([0, 1])
    face = b["mask"] > 0.99  # (B, 1, S, S) pixels fully on the face
    ones = torch.ones_like(b["albedo"])
    shading, _image, _comp = compose(ones, b["normals"], b["sh"], b["mask"], b["background"])
    want = b["shading"].expand_as(shading)[face.expand_as(shading)]
    got = shading.clamp_min(0)[face.expand_as(shading)]  # the renderer clamps at 0
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
