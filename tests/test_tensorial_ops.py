"""Pure numerics of the tensorial model: Khatri–Rao, rotation, SO(3), angles, Appendix B."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.synth.scene import rotation_matrix
from facefactors.tensorial import ops

D64 = torch.float64


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=D64)


def test_khatri_rao_two_way_equals_mode_products():
    """Eq. 4: B_(1)(z_exp ⊙ z_id) == B ×2 z_exp ×3 z_id for every sample."""
    core = _rand(7, 3, 5)  # (k_3d, k_exp, k_id)
    z_exp, z_id = _rand(4, 3, seed=1), _rand(4, 5, seed=2)
    got = ops.khatri_rao(z_exp, z_id) @ ops.matricize(core).T
    want = torch.stack(
        [ops.mode_product(ops.mode_product(core, z_exp[b], 2), z_id[b], 2) for b in range(4)]
    )
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got, ops.multilinear(core, z_exp, z_id))


def test_khatri_rao_three_way_equals_mode_products():
    """Eqs. 1–2: Q_(1)(z_l ⊙ z_exp ⊙ z_id) == Q ×2 z_l ×3 z_exp ×4 z_id."""
    core = _rand(6, 4, 3, 5)
    z_l, z_exp, z_id = _rand(3, 4, seed=1), _rand(3, 3, seed=2), _rand(3, 5, seed=3)
    got = ops.khatri_rao(z_l, z_exp, z_id) @ ops.matricize(core).T
    for b in range(3):
        # Contract mode 4, then 3, then 2, so the 1-based modes stay valid.
        t = ops.mode_product(core, z_id[b], 4)
        t = ops.mode_product(t, z_exp[b], 3)
        t = ops.mode_product(t, z_l[b], 2)
        torch.testing.assert_close(got[b], t)
    torch.testing.assert_close(ops.fold(ops.matricize(core), (4, 3, 5)), core)


def test_khatri_rao_column_order_first_factor_slowest():
    """Column (i·k2 + j) is a_i · b_j; swapping equal-sized factors must not agree."""
    a, b = _rand(2, 3, seed=4), _rand(2, 3, seed=5)
    kr = ops.khatri_rao(a, b)
    for i in range(3):
        for j in range(3):
            torch.testing.assert_close(kr[:, i * 3 + j], a[:, i] * b[:, j])
    assert not torch.allclose(kr, ops.khatri_rao(b, a))
    # A core contracted in the paper's order differs from the reversed (Kolda) order.
    core = _rand(5, 3, 3, seed=6)
    assert not torch.allclose(
        ops.khatri_rao(b, a) @ ops.matricize(core).T, ops.multilinear(core, a, b)
    )


def test_rotate_feature_matches_explicit_loop():
    feat, rot = _rand(3, 12, seed=7), _rand(3, 3, 3, seed=8)
    got = ops.rotate_feature(feat, rot)
    for b in range(3):
        m = torch.zeros(3, 4, dtype=D64)
        for r in range(3):
            for c in range(4):
                m[r, c] = feat[b, r * 4 + c]  # row-major 3 × K/3
        want = torch.zeros(3, 4, dtype=D64)
        for r in range(3):
            for c in range(4):
                want[r, c] = sum(rot[b, r, k] * m[k, c] for k in range(3))
        torch.testing.assert_close(got[b], want.reshape(-1))
    with pytest.raises(ValueError):
        ops.rotate_feature(_rand(2, 10), rot[:2])


def test_so3_projection_is_a_proper_rotation():
    m = _rand(64, 3, 3, seed=9)
    m[::2, 0] *= -1  # half of them start with det < 0
    r = ops.project_to_so3(m)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(64, dtype=D64))
    eye = torch.eye(3, dtype=D64).expand(64, 3, 3)
    torch.testing.assert_close(r.transpose(1, 2) @ r, eye)


def test_so3_projection_is_identity_on_rotations_and_nearest():
    rot = torch.as_tensor(
        rotation_matrix(np.array([30.0, -50.0]), np.array([10.0, 5.0]), np.array([-7.0, 14.0]))
    )
    torch.testing.assert_close(ops.project_to_so3(rot), rot)
    # Frobenius-nearest: no other rotation is closer to a perturbed matrix.
    m = rot + 0.2 * _rand(2, 3, 3, seed=10)
    r = ops.project_to_so3(m)
    others = ops.project_to_so3(r + 0.05 * _rand(2, 3, 3, seed=11))
    assert ((m - r).norm(dim=(1, 2)) < (m - others).norm(dim=(1, 2))).all()


def test_so3_projection_gradcheck_and_finite_at_rotations():
    m = _rand(4, 3, 3, seed=12).requires_grad_()
    assert torch.autograd.gradcheck(ops.project_to_so3, (m,))
    neg = _rand(3, 3, 3, seed=13)
    neg[:, 0] *= -1
    neg = neg[torch.linalg.det(neg) < 0].requires_grad_()
    assert neg.shape[0] > 0 and torch.autograd.gradcheck(ops.project_to_so3, (neg,))
    # At an exact rotation (repeated singular values) autograd through the SVD is
    # NaN; the closed-form backward must be finite and match central differences.
    eye = torch.eye(3, dtype=D64, requires_grad=True)
    g = _rand(3, 3, seed=14)
    (ops.project_to_so3(eye) * g).sum().backward()
    num = torch.zeros(3, 3, dtype=D64)
    for i in range(3):
        for j in range(3):
            e = torch.zeros(3, 3, dtype=D64)
            e[i, j] = 1e-6
            plus = ops.project_to_so3(torch.eye(3, dtype=D64) + e)
            minus = ops.project_to_so3(torch.eye(3, dtype=D64) - e)
            num[i, j] = ((plus - minus) * g).sum() / 2e-6
    assert torch.isfinite(eye.grad).all()
    torch.testing.assert_close(eye.grad, num, atol=1e-6, rtol=1e-6)


def test_rotation_from_ypr_matches_synth_convention():
    rng = np.random.default_rng(0)
    yaw, pitch, roll = rng.uniform(-60, 60, 20), rng.uniform(-20, 20, 20), rng.uniform(-15, 15, 20)
    want = torch.as_tensor(rotation_matrix(yaw, pitch, roll))
    t = [torch.as_tensor(a) for a in (yaw, pitch, roll)]
    torch.testing.assert_close(ops.rotation_from_ypr(*t), want)
    torch.testing.assert_close(ops.ypr_from_rotation(want), torch.stack(t, -1))
    # Pure yaw of +30°: the nose (+z) moves to image right (+x), as synth documents.
    nose = ops.rotation_from_ypr(*(torch.tensor([v], dtype=D64) for v in (30.0, 0.0, 0.0)))[0]
    assert (nose @ torch.tensor([0.0, 0.0, 1.0], dtype=D64))[0] > 0.4


@pytest.mark.parametrize("which", [0, 1, 2])
def test_appendix_b_closed_form_gradient(which):
    """∂‖X − B_(1)(Z1 ⊙ Z2 ⊙ Z3)‖²_F / ∂Z_i by autograd == 2Aᵀ(Aẑ − x̂) (Eq. 23)."""
    ks = (2, 3, 2)
    factors = [_rand(3, k, seed=20 + i) for i, k in enumerate(ks)]
    b1 = _rand(5, int(np.prod(ks)), seed=30)
    x = _rand(3, 5, seed=31)
    leaf = factors[which].clone().requires_grad_()
    zs = [leaf if i == which else f for i, f in enumerate(factors)]
    energy = (x - ops.khatri_rao(*zs) @ b1.T).pow(2).sum()
    (grad,) = torch.autograd.grad(energy, leaf)
    torch.testing.assert_close(grad, ops.factor_grad_closed_form(x, b1, factors, which))


def test_so3_projection_rank_deficient_and_half_precision_inputs():
    m = _rand(2, 3, 3, seed=40)
    m[:, 2] = 0.0  # rank 2: one zero singular value
    m.requires_grad_()
    r = ops.project_to_so3(m)
    r.sum().backward()
    assert torch.isfinite(m.grad).all()
    torch.testing.assert_close(torch.linalg.det(r.detach()), torch.ones(2, dtype=D64))
    half = _rand(2, 3, 3, seed=41).to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = ops.project_to_so3(half)
    assert r.dtype == torch.float32
    r.sum().backward()
    assert half.grad.dtype == torch.bfloat16 and torch.isfinite(half.grad.float()).all()


def test_so3_projection_of_a_non_finite_matrix_is_nan_not_an_error():
    """NaN must reach the losses (and the NaN stop), not crash inside LAPACK."""
    m = torch.eye(3).repeat(2, 1, 1)
    m[1, 0, 0] = float("nan")
    r = ops.project_to_so3(m)
    assert torch.equal(r[0], torch.eye(3)) and torch.isnan(r[1]).all()
