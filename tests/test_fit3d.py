"""The 3D face fit: landmark Procrustes, the differentiable render, the fit itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.fit3d import procrustes as P
from facefactors.fit3d import render as FR
from facefactors.fit3d.fitter import Fit3dConfig, fit_faces, solve_sh
from facefactors.synth import facemodel as FM
from facefactors.synth import identity as ID
from facefactors.synth import scene as SC

SIZE = 32


@pytest.fixture(scope="module")
def faces():
    from facefactors.experiments.fit3d_accuracy import render_test_faces

    return render_test_faces(8, SIZE, seed=3)


def _landmarks3d(n: int) -> torch.Tensor:
    model = FM.face_model(SIZE)
    gen = torch.Generator().manual_seed(0)
    shape = torch.randn(n, ID.K_SHAPE, generator=gen)
    return FM.landmarks3d(model, FM.identity_vertices(model, shape)).double()


def test_procrustes_recovers_rotation_scale_shift_exactly():
    x3 = _landmarks3d(6)
    yaw, pitch, roll = (
        np.array([-50, -20, 0, 10, 35, 55.0]),
        np.linspace(-18, 18, 6),
        np.linspace(14, -14, 6),
    )
    rot = torch.as_tensor(SC.rotation_matrix(yaw, pitch, roll))
    scale = torch.linspace(0.2, 0.7, 6, dtype=torch.float64)
    shift = torch.tensor([[16.0, 17.0]]).double().expand(6, 2) + torch.arange(6.0)[:, None]
    x2 = P.project_points(x3, rot, scale, shift)
    r, s, t = P.weak_perspective_fit(x3, x2)
    assert torch.allclose(r, rot, atol=1e-9)
    assert torch.allclose(s, scale, atol=1e-9)
    assert torch.allclose(t, shift, atol=1e-8)
    assert torch.allclose(P.yaw_deg(r), torch.as_tensor(yaw), atol=1e-7)
    assert torch.allclose(torch.linalg.det(r), torch.ones(6, dtype=torch.float64))
    # The transposed rotation (a plausible bug) does not reproduce the landmarks.
    wrong = P.project_points(x3, r.transpose(1, 2), s, t)
    assert (wrong - x2).norm(dim=-1).mean(dim=1).min() > 1.0


def test_procrustes_never_returns_a_reflection():
    """Mirrored landmarks cannot be matched by a reflection: det stays +1."""
    x3 = _landmarks3d(4)
    rot = torch.as_tensor(SC.rotation_matrix(np.array([30.0] * 4), np.zeros(4), np.zeros(4)))
    x2 = P.project_points(
        x3, rot, torch.full((4,), 0.3, dtype=torch.float64), torch.zeros(4, 2).double()
    )
    mirrored = x2 * torch.tensor([-1.0, 1.0]).double()
    r, _s, _t = P.weak_perspective_fit(x3, mirrored)
    assert torch.allclose(torch.linalg.det(r), torch.ones(4, dtype=torch.float64))


def test_torch_render_matches_the_synthetic_renderer(faces):
    model = FM.face_model(SIZE)
    n = len(faces["image"])
    shape = faces["id_coeffs"][:, : ID.K_SHAPE]
    exp = faces["exp_coeffs"]
    verts = FR.model_vertices(model, shape, exp)
    lm_neutral = FM.landmarks3d(model, FM.identity_vertices(model, shape))
    m, t = SC.pose_transforms(lm_neutral, faces["rotation"], SIZE)
    albedo = FR.exact_albedo(SIZE, faces["id_coeffs"][:, ID.K_SHAPE :].double().numpy())
    dark = exp[:, model.wrinkle_cols] @ model.wrinkles.T
    out = FR.render_fit(model, verts, m, t, albedo, faces["sh"], dark)
    image = torch.lerp(faces["background"], out["face"], out["alpha"]).clamp(0, 1) * 2 - 1
    assert image.shape == (n, 3, SIZE, SIZE)
    assert (image - faces["image"]).abs().max() < 1e-4
    assert torch.equal(out["alpha"], faces["mask"])
    assert (out["normals"] - faces["normals"]).abs().max() < 1e-4
    assert (out["landmarks"] - faces["landmarks5"]).abs().max() < 1e-4


def test_render_gradients_reach_every_coefficient(faces):
    model = FM.face_model(SIZE)
    shape = faces["id_coeffs"][:2, : ID.K_SHAPE].clone().requires_grad_(True)
    exp = faces["exp_coeffs"][:2].clone().requires_grad_(True)
    alb = faces["id_coeffs"][:2, ID.K_SHAPE :].clone().requires_grad_(True)
    sh = faces["sh"][:2].clone().requires_grad_(True)
    m, t = FR.camera(faces["rotation"][:2], torch.full((2,), 0.3), torch.full((2, 2), 16.0))
    out = FR.render_fit(
        model, FR.model_vertices(model, shape, exp), m, t, FR.linear_albedo(SIZE, alb), sh
    )
    loss = (out["face"] * out["valid"]).square().mean() + out["landmarks"].square().mean()
    loss.backward()
    for g in (shape.grad, exp.grad, alb.grad, sh.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_shading_is_differentiable_float64_gradcheck():
    gen = torch.Generator().manual_seed(1)
    n = torch.nn.functional.normalize(
        torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64), dim=1
    )
    albedo = torch.rand(2, 3, 3, 3, generator=gen, dtype=torch.float64)
    sh = (torch.randn(2, 3, 9, generator=gen, dtype=torch.float64) * 0.2).requires_grad_(True)
    sh.data[:, :, 0] += 1.5  # keep the irradiance positive (away from the clamp's kink)
    albedo.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, s: FR.shade(a, n, s), (albedo, sh))


def test_least_squares_light_recovers_a_known_light(faces):
    """Given the true albedo and normals, the SH solve returns the light that shaded them."""
    valid = (faces["mask"] > 0.999).float()
    target = faces["albedo"] * faces["shading"]
    sh = solve_sh(faces["albedo"], faces["normals"], valid, target, ridge=1e-9)
    rel = (sh - faces["sh"]).flatten(1).norm(dim=1) / faces["sh"].flatten(1).norm(dim=1)
    assert rel.max() < 0.02


def test_fit_beats_the_mean_face_reference(faces):
    from facefactors.experiments.fit3d_accuracy import fit_errors

    cfg = Fit3dConfig(size=SIZE, steps=25)
    fit = fit_faces(faces["image"], faces["landmarks5"], cfg)
    ref = fit_faces(faces["image"], faces["landmarks5"], Fit3dConfig(size=SIZE, steps=0))
    e_fit, e_ref = fit_errors(fit, faces), fit_errors(ref, faces)
    assert e_fit["photometric_mse"] < 0.6 * e_ref["photometric_mse"]
    assert e_fit["normal_deg"] < e_ref["normal_deg"]
    assert e_fit["vertex_mm"] < e_ref["vertex_mm"]
    assert e_fit["sh_rmse"] < e_ref["sh_rmse"]
    assert e_fit["rotation_deg"] < 15.0
    # Shapes and formats of the synthetic pseudo ground truth the trainer reads.
    n = len(faces["image"])
    assert fit.vertices.shape == faces["vertices"].shape
    assert fit.normals.shape == faces["normals"].shape and fit.mask.shape == faces["mask"].shape
    assert fit.id_coeffs.shape == (n, ID.K_SHAPE + ID.K_ALBEDO)
    assert fit.exp_coeffs.shape == faces["exp_coeffs"].shape and (fit.exp_coeffs >= 0).all()
    assert fit.sh.shape == (n, 3, 9) and fit.rotation.shape == (n, 3, 3) and fit.yaw.shape == (n,)
    norms = fit.normals.norm(dim=1)[fit.mask[:, 0] > 0.5]
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)


def test_fit_rejects_crops_of_the_wrong_size(faces):
    with pytest.raises(ValueError, match="32-px"):
        fit_faces(faces["image"][:, :, :16, :16], faces["landmarks5"], Fit3dConfig(size=SIZE))
