"""Tensorial losses against hand-computed values, BEGAN's k_t, the frontal filter, switches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from facefactors.tensorial import losses as L
from facefactors.tensorial.batch import Batch
from facefactors.tensorial.config import TensorialLossConfig, TensorialModelConfig
from facefactors.tensorial.model import TensorialModel, Z0AutoEncoder

T = torch.tensor


def _f(t) -> float:
    """A Python float of a (possibly graph-carrying) scalar."""
    return float(t.detach()) if torch.is_tensor(t) else float(t)


def test_recon_and_began_energies():
    x = torch.zeros(1, 3, 1, 2)
    x_hat = T([1.0, -1.0, 2.0, 0.0, 0.0, 0.0]).view(1, 3, 1, 2)
    assert _f(L.recon_loss(x, x_hat)) == pytest.approx((1 + 1 + 4) / 6)
    assert _f(L.began_energy(x, x_hat)) == pytest.approx((1 + 1 + 2) / 6)
    assert _f(L.adversarial_loss(x_hat, x)) == pytest.approx(4 / 6)
    assert _f(L.discriminator_objective(T(0.3), T(0.2), 0.5)) == pytest.approx(0.2)


def test_began_update_steps_and_clipping():
    g, lk = 0.5, 1e-3
    k = L.began_update(0.0, 0.4, 0.1, g, lk)  # 0 + 1e-3 (0.2 − 0.1)
    assert k == pytest.approx(1e-4)
    k = L.began_update(k, 0.4, 0.5, g, lk)  # 1e-4 + 1e-3 (0.2 − 0.5) < 0
    assert k == 0.0
    assert L.began_update(0.9, 4.0, 0.0, g, 1.0) == 1.0  # 0.9 + 2 > 1
    assert L.began_update(0.5, 1.0, 0.5, g, 1.0) == pytest.approx(0.5)  # balanced: unchanged
    assert L.began_convergence(0.4, 0.1, g) == pytest.approx(0.5)
    assert L.began_convergence(0.4, 0.3, g) == pytest.approx(0.5)


def test_discriminator_losses_logs():
    x, fake = torch.full((2, 3, 2, 2), 0.4), torch.full((2, 3, 2, 2), 0.1)
    cfg = TensorialLossConfig(lambda_k=0.1)
    total, logs = L.discriminator_losses(x, fake, torch.zeros_like, 0.5, cfg)
    assert _f(logs["loss/d/real"]) == pytest.approx(0.4)
    assert _f(logs["loss/d/fake"]) == pytest.approx(0.1)
    assert _f(total) == pytest.approx(0.4 - 0.5 * 0.1)
    assert _f(logs["began/k"]) == pytest.approx(0.5 + 0.1 * (0.2 - 0.1))
    assert _f(logs["began/M"]) == pytest.approx(0.4 + 0.1)


def test_verification_pose_coefficients():
    v = T([[1.0, 0.0], [1.0, 0.0]])
    assert _f(L.verification_loss(v, T([[0.0, 1.0], [2.0, 0.0]]))) == pytest.approx(0.5)
    z_p = torch.eye(3).reshape(1, 9).clone()
    z_p[0, 4] += 0.3
    assert _f(L.pose_loss(z_p, torch.eye(3)[None])) == pytest.approx(0.09 / 9)
    assert _f(L.coefficient_loss(T([[1.0, 2.0]]), T([[0.0, 0.0]]))) == pytest.approx(2.5)


def test_nfe_normal_and_unit_length_terms():
    target = torch.zeros(1, 3, 2, 2)
    target[:, 2] = 1.0
    pred = target.clone()
    pred[0, 0, 0, 0] = 1.0  # error (1, 0, 0) at an on-face pixel
    pred[0, 0, 1, 1] = 1e6  # huge error off the face
    mask = T([[1.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    assert _f(L.normal_loss(pred, target, mask)) == pytest.approx(1 / 6)
    n = torch.zeros(1, 3, 1, 2)
    n[0, 0, 0] = T([2.0, 1.0])
    assert _f(L.unit_length_loss(n)) == pytest.approx(4.5)  # ((4 − 1)² + 0) / 2


def test_smoothness_tv_light_mask():
    m = T([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    assert _f(L.smoothness_loss(m)) == pytest.approx(0.5 * (2.5 + 6.5))
    assert _f(L.albedo_tv_loss(m)) == pytest.approx(0.5 * (1.5 + 2.5))
    top = T([[1.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    assert _f(L.smoothness_loss(m, top)) == pytest.approx(0.5 * 1.0)  # only the top pair
    sh = torch.ones(1, 3, 9) * T([1.0, 2.0, 3.0]).view(1, 3, 1)
    assert _f(L.light_loss(torch.zeros(1, 3, 9), sh)) == pytest.approx((1 + 4 + 9) / 3)
    assert _f(L.light_loss(torch.zeros(1, 1, 9), sh)) == pytest.approx(4.0)  # channel mean 2
    assert _f(L.mask_loss(torch.full((1, 1, 2, 2), 0.5), torch.ones(1, 1, 2, 2))) == 0.5


def test_shape_loss_units():
    verts = torch.zeros(1, 2, 3)
    pred = verts.clone()
    pred[0, 0, 0] = 100.0  # 1 unit of 100 mm in one of 6 coordinates
    assert _f(L.shape_loss(pred, verts, 100.0)) == pytest.approx(1 / 6)


def test_frontal_filter_excludes_non_frontal_samples():
    x = torch.zeros(3, 3, 2, 2)
    frontal = torch.ones(3, 3, 2, 2, requires_grad=True)
    yaw = T([5.0, -40.0, -14.0])
    base = L.frontal_loss(x, frontal, yaw, 15.0)
    assert _f(base) == pytest.approx(1.0)
    huge = frontal.detach().clone()
    huge[1] = float("inf")  # the non-frontal sample
    assert _f(L.frontal_loss(x, huge, yaw, 15.0)) == pytest.approx(1.0)
    huge[1] = 1e20
    assert _f(L.frontal_normal_loss(x, huge, yaw, 15.0)) == pytest.approx(1.0)
    # A frontal sample's error does count.
    more = frontal.detach().clone()
    more[2] = 3.0
    assert _f(L.frontal_loss(x, more, yaw, 15.0)) == pytest.approx((1 + 9) / 2)


def test_frontal_loss_with_no_frontal_sample_is_zero_without_nan():
    frontal = torch.ones(2, 3, 2, 2, requires_grad=True)
    loss = L.frontal_loss(torch.zeros(2, 3, 2, 2), frontal, T([30.0, -50.0]), 15.0)
    assert _f(loss) == 0.0
    loss.backward()
    assert torch.equal(frontal.grad, torch.zeros_like(frontal))
    masked = L.frontal_loss(
        torch.zeros(2, 3, 2, 2), frontal, T([30.0, 5.0]), 15.0, torch.zeros(2, 1, 2, 2)
    )
    assert torch.isfinite(masked)


def _tiny_model():
    cfg = TensorialModelConfig(
        image_size=32, enc_channels=[4, 4, 4], code_dim=16, z_b=8, z_m=8, k_id=6, k_exp=3
    )
    torch.manual_seed(0)
    return TensorialModel(cfg), cfg


def _full_batch(n=2, s=32):
    g = torch.Generator().manual_seed(1)
    normals = torch.nn.functional.normalize(torch.randn(n, 3, s, s, generator=g), dim=1)
    return Batch(
        image=torch.rand(n, 3, s, s, generator=g) * 2 - 1,
        rotation=torch.eye(3).expand(n, 3, 3),
        id_coeffs=torch.randn(n, 47, generator=g),
        exp_coeffs=torch.rand(n, 36, generator=g),
        vertices=torch.randn(n, 522, 3, generator=g) * 50,
        normals=normals,
        sh=torch.randn(n, 3, 9, generator=g),
        mask=(torch.rand(n, 1, s, s, generator=g) > 0.5).float(),
        yaw=T([3.0, 45.0])[:n],
    )


ALL_G = (
    "recon adv veri pose exp id normal normal_smooth unit light albedo_tv mask mask_smooth "
    "shape3d frontal frontal_normal"
).split()


def test_generator_losses_total_is_the_weighted_sum_and_switches_drop_terms():
    model, _ = _tiny_model()
    batch = _full_batch()
    out = model(batch.image)
    disc, ver = (lambda t: 0.5 * t), (lambda t: t.flatten(1))
    cfg = TensorialLossConfig()
    total, logs = L.generator_losses(out, batch, cfg, disc, ver)
    assert {k.split("/")[-1] for k in logs if k.startswith("loss/g/")} == {*ALL_G, "total"}
    weighted = sum(cfg.weight(n) * _f(logs[f"loss/g/{n}"]) for n in ALL_G)
    assert _f(total) == pytest.approx(weighted, rel=1e-5)
    assert _f(logs["stat/g/frontal"]) == 0.5
    assert _f(logs["loss/g/adv"]) == pytest.approx(0.5 * _f(out.recon.abs().mean()), rel=1e-5)
    for name in ALL_G:
        off = dataclasses.replace(cfg, **{f"use_{name}": False})
        t_off, l_off = L.generator_losses(out, batch, off, disc, ver)
        assert f"loss/g/{name}" not in l_off
        want = _f(total) - cfg.weight(name) * _f(logs[f"loss/g/{name}"])
        assert _f(t_off) == pytest.approx(want, rel=1e-4, abs=1e-6), name
    zero = dataclasses.replace(cfg, lambda_frontal=0.0)
    assert "loss/g/frontal" not in L.generator_losses(out, batch, zero, disc, ver)[1]


def test_generator_losses_skip_terms_without_inputs():
    model, cfg_m = _tiny_model()
    batch = Batch(image=_full_batch().image)  # a real image with no pseudo ground truth
    _, logs = L.generator_losses(model(batch.image), batch, TensorialLossConfig())
    got = {k.split("/")[-1] for k in logs if k.startswith("loss/g/")}
    assert got == {"recon", "normal_smooth", "unit", "albedo_tv", "mask_smooth", "total"}
    z0 = Z0AutoEncoder(cfg_m)
    _, logs = L.generator_losses(z0(batch.image), _full_batch(), TensorialLossConfig())
    assert {k for k in logs if k.startswith("loss/g/")} == {"loss/g/recon", "loss/g/total"}


def test_pose_loss_on_code_or_rotation():
    model, _ = _tiny_model()
    batch = _full_batch()
    out = model(batch.image)
    only_pose = {f"use_{n}": n == "pose" for n in ALL_G}
    code = TensorialLossConfig(**only_pose)
    rot = dataclasses.replace(code, pose_on="rotation")
    l_code = L.generator_losses(out, batch, code)[1]["loss/g/pose"]
    l_rot = L.generator_losses(out, batch, rot)[1]["loss/g/pose"]
    assert _f(l_code) == pytest.approx(_f(L.pose_loss(out.codes.z_p, batch.rotation)))
    assert _f(l_rot) == pytest.approx(_f(L.pose_loss(out.rotation, batch.rotation)))
    assert _f(l_code) != pytest.approx(_f(l_rot))
