"""Pure tensor operations of the tensorial model (§3 of the paper).

Notation. The paper stacks the n samples of a batch in the *columns* of its
latent matrices (``Z_exp`` is ``k_exp × n``); PyTorch batches stack them in
*rows*, so every function here takes (B, k) codes. Modes are numbered from 1
as in the paper: the core tensor ``Q ∈ R^{k_x × k_l × k_exp × k_id}`` has the
pixel mode first, and ``Q ×2 z_l ×3 z_exp ×4 z_id`` contracts modes 2, 3, 4.

Matricisation. Eq. 2, ``X_f = Q_(1) (Z_l ⊙ Z_exp ⊙ Z_id)``, holds as written
only for the *row-major* (C-order) mode-1 unfolding ``Q.reshape(k_x, -1)``,
whose column index is ``(l · k_exp + e) · k_id + i``: the Kronecker product
``z_l ⊗ z_exp ⊗ z_id`` has its first factor varying slowest. Kolda & Bader's
column-major unfolding would need the factors in reverse order,
``Z_id ⊙ Z_exp ⊙ Z_l``. :func:`matricize` is the row-major one, so a
projection layer's weight *is* ``Q_(1)`` and :func:`fold` recovers ``Q``.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch.autograd.function import once_differentiable


def khatri_rao(*factors: torch.Tensor) -> torch.Tensor:
    """Batched Khatri–Rao product (column-wise Kronecker) of 2 or more factors.

    Row b of the result is ``a_b ⊗ b_b ⊗ ...``: column ``(i · k2 + j)`` of the
    2-way product is ``a[:, i] * b[:, j]``, the order of Eq. 2 (first factor
    slowest).

    Args:
        *factors: (B, k_1), (B, k_2), ... codes of the same batch size.

    Returns:
        (B, k_1 · k_2 · ...) features.
    """
    if len(factors) < 2:
        raise ValueError("khatri_rao needs at least two factors")
    out = factors[0]
    for f in factors[1:]:
        # einsum('bi,bj->bij') then flatten: i slowest, j fastest.
        out = (out[:, :, None] * f[:, None, :]).reshape(out.shape[0], -1)
    return out


def matricize(core: torch.Tensor) -> torch.Tensor:
    """Mode-1 (row-major) unfolding ``T_(1)`` of a core tensor.

    Args:
        core: (k_x, k_1, ..., k_M).

    Returns:
        (k_x, k_1 · ... · k_M), with ``T_(1) (z_1 ⊗ ... ⊗ z_M) = T ×2 z_1 ... ×(M+1) z_M``.
    """
    return core.reshape(core.shape[0], -1)


def fold(matrix: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`matricize`: (k_x, prod(dims)) -> (k_x, *dims)."""
    if matrix.shape[1] != math.prod(dims):
        raise ValueError(f"cannot fold {tuple(matrix.shape)} into (k_x, {dims})")
    return matrix.reshape(matrix.shape[0], *dims)


def mode_product(tensor: torch.Tensor, vector: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-``mode`` vector product ``T ×_mode v`` (modes numbered from 1).

    Args:
        tensor: (I_1, ..., I_N).
        vector: (I_mode,).
        mode: 1-based mode to contract.

    Returns:
        The tensor with mode ``mode`` contracted away: (I_1, ..., I_{mode-1}, I_{mode+1}, ..., I_N).
    """
    return torch.tensordot(tensor, vector, dims=([mode - 1], [0]))


def multilinear(core: torch.Tensor, *codes: torch.Tensor) -> torch.Tensor:
    """Batched ``T ×2 z_1 ×3 z_2 ... ×(M+1) z_M`` for every sample (Eqs. 1, 3, 5).

    The direct einsum form, used as the reference for :func:`khatri_rao`.

    Args:
        core: (k_x, k_1, ..., k_M).
        *codes: (B, k_1), ..., (B, k_M).

    Returns:
        (B, k_x).
    """
    letters = "abcdefghijklmnopqrstuvw"[: len(codes)]
    spec = "x" + letters + "," + ",".join("z" + c for c in letters) + "->zx"
    return torch.einsum(spec, core, *codes)


def rotate_feature(feature: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """The "rotation" of §3.4: reshape to 3 × K/3, left-multiply by R, flatten.

    Row r of the 3 × K/3 matrix holds features ``[r·K/3, (r+1)·K/3)`` (row-major
    reshape of the 2-way feature ``(z_exp ⊙ z_id)``).

    Args:
        feature: (B, K) 2-way synthesis feature, K divisible by 3.
        rotation: (B, 3, 3).

    Returns:
        (B, K) rotated feature.
    """
    b, k = feature.shape
    if k % 3:
        raise ValueError(f"the rotated feature needs a size divisible by 3, got {k}")
    return torch.bmm(rotation, feature.reshape(b, 3, k // 3)).reshape(b, k)


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off on ``device`` (a no-op where autocast does not exist, e.g. meta)."""
    try:
        return torch.autocast(device.type, enabled=False)
    except RuntimeError:
        return contextlib.nullcontext()


class _SpecialProcrustes(torch.autograd.Function):
    """R = U' V^T with U' = U diag(1, 1, det(U V^T)); backward in closed form.

    Write M = U' S' V^T with S' = diag(σ1, σ2, d σ3), d = det(U V^T), so that
    M = R P with P = V S' V^T symmetric. Differentiating, U'^T dM V = W S' +
    S' W + (symmetric part) with W = V^T R^T dR V skew, hence
    W_ij = (X_ij − X_ji) / (s_i + s_j) with X = U'^T dM V and dR = U' W V^T.
    The vector-Jacobian product is therefore

        ∂L/∂M = U' [K ⊙ (Y − Y^T)] V^T,  Y = U'^T (∂L/∂R) V,  K_ij = 1 / (s_i + s_j).

    Unlike autograd through ``torch.linalg.svd`` (terms 1 / (σ_i² − σ_j²),
    NaN when singular values repeat), this stays finite at rotations
    themselves (all σ = 1), which is exactly where Eq. 9 pulls the pose code.
    It is singular only where s_i + s_j = 0 (d = −1 and σ2 = σ3), where the
    projection itself is discontinuous.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with _no_autocast(m.device):  # SVD/det need fp32+
            # A non-finite input gives a NaN rotation (LAPACK would raise instead), so
            # the NaN reaches the losses and the trainer's NaN stop names it.
            bad = ~torch.isfinite(m).all(dim=(-2, -1))
            if m.device.type != "meta" and bool(bad.any()):
                eye = torch.eye(3, dtype=m.dtype, device=m.device).expand_as(m)
                m = torch.where(bad[..., None, None], eye, m)
            u, s, vh = torch.linalg.svd(m)
            d = torch.linalg.det(u @ vh)  # ±1
            sign = torch.ones_like(s)
            sign[..., 2] = d
            u = u * sign[..., None, :]  # U' = U diag(1, 1, d)
            ctx.save_for_backward(u, s * sign, vh)
            r = u @ vh
            return torch.where(bad[..., None, None], torch.full_like(r, float("nan")), r)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        u, s, vh = ctx.saved_tensors
        with _no_autocast(u.device):
            y = u.transpose(-1, -2) @ grad.to(u.dtype) @ vh.transpose(-1, -2)
            eye = torch.eye(3, dtype=torch.bool, device=s.device)
            # Y − Yᵀ has a zero diagonal; keep K's diagonal out so a rank-deficient
            # M (s_i = 0) cannot turn 0 · ∞ into NaN.
            k = torch.where(eye, 0.0, 1.0 / (s[..., :, None] + s[..., None, :]))
            return u @ (k * (y - y.transpose(-1, -2))) @ vh


def project_to_so3(m: torch.Tensor) -> torch.Tensor:
    """Nearest proper rotation to each 3 × 3 matrix (special orthogonal Procrustes).

    ``M = U S Vᵀ`` → ``R = U diag(1, 1, det(U Vᵀ)) Vᵀ``, the SVD orthogonalisation
    of Levinson et al. 2020 ("An analysis of SVD for deep rotation estimation").
    Chosen over Gram–Schmidt on 6 values because the pose code ``z_p`` has 9
    values that Eq. 9 compares entry by entry with the pseudo ground-truth
    rotation: the SVD projection uses all 9, is the Frobenius-closest rotation
    (so it is the identity on rotations and barely moves a code that Eq. 9 has
    already pulled close to one), treats the three rows symmetrically, and
    Levinson et al. show it has the smallest expected error under noise on
    the 9 outputs. The det sign flip makes reflections impossible (det R = +1).

    The backward pass is the closed form of :class:`_SpecialProcrustes`, finite
    at rotations (repeated singular values), where autograd through the SVD
    returns NaN.

    Args:
        m: (..., 3, 3) unconstrained matrices (e.g. ``z_p.view(-1, 3, 3)``).

    Returns:
        (..., 3, 3) rotations, float32 for half-precision inputs (the SVD
        needs at least float32, e.g. under bf16 autocast).
    """
    if m.dtype not in (torch.float32, torch.float64):
        m = m.float()
    return _SpecialProcrustes.apply(m)


def rotation_from_ypr(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)`` for angles in degrees.

    Same convention as :func:`facefactors.synth.scene.rotation_matrix` (camera
    frame x right, y up, z toward the viewer; positive yaw moves the nose to
    image right, positive pitch tilts the face down, positive roll turns it
    counter-clockwise in the image), but differentiable and batched in torch.

    Args:
        yaw, pitch, roll: (B,) degrees.

    Returns:
        (B, 3, 3).
    """
    y, p, r = (torch.deg2rad(a) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = y.cos(), y.sin(), p.cos(), p.sin(), r.cos(), r.sin()
    # Rz @ Rx @ Ry written out (rows), see ypr_from_rotation for the inverse.
    rows = [
        cr * cy - sr * sp * sy,
        -sr * cp,
        cr * sy + sr * sp * cy,
        sr * cy + cr * sp * sy,
        cr * cp,
        sr * sy - cr * sp * cy,
        -cp * sy,
        sp,
        cp * cy,
    ]
    return torch.stack(rows, dim=-1).reshape(*yaw.shape, 3, 3)


def ypr_from_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rotation_from_ypr`: (yaw, pitch, roll) in degrees.

    From ``R[2] = (-cos p sin y, sin p, cos p cos y)`` and
    ``R[:, 1] = (-sin r cos p, cos r cos p, sin p)``. Unique for |pitch| < 90°
    (the synthetic faces stay within ±20°); at gimbal lock yaw and roll are not
    separable and this returns one valid split.

    Args:
        rotation: (..., 3, 3).

    Returns:
        (..., 3) angles ``(yaw, pitch, roll)`` in degrees.
    """
    r = rotation
    pitch = torch.asin(r[..., 2, 1].clamp(-1.0, 1.0))
    yaw = torch.atan2(-r[..., 2, 0], r[..., 2, 2])
    roll = torch.atan2(-r[..., 0, 1], r[..., 1, 1])
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1))


def factor_grad_closed_form(
    x: torch.Tensor, b1: torch.Tensor, factors: list[torch.Tensor], i: int
) -> torch.Tensor:
    """Appendix B: ∂E/∂Z^(i) of ``E = ‖X − B_(1)(Z^(1) ⊙ ... ⊙ Z^(M))‖²_F`` (Eqs. 15, 23).

    Builds ``A`` with ``vec(B_(1)(Z^(1) ⊙ ... ⊙ Z^(M))) = A ẑ^(i)`` explicitly
    and returns the matricised ``2 Aᵀ (A ẑ^(i) − x̂)``. For sample j the
    Khatri–Rao column is ``(ẑ_j^(<i) ⊗ I ⊗ ẑ_j^(>i)) z_j^(i)``, so A is block
    diagonal ``(I ⊗ B_(1))`` times those blocks. A dense reference for tests
    on small sizes (A has n·k_x × n·k_i entries), not a training path.

    Args:
        x: (n, k_x) data, one sample per row (the paper's X is its transpose).
        b1: (k_x, k_1 ··· k_M) mode-1 matricised core.
        factors: M codes (n, k_m).
        i: 0-based index of the factor to differentiate.

    Returns:
        (n, k_i) gradient, laid out like ``factors[i]``.
    """
    n, k_i = factors[i].shape
    eye = torch.eye(k_i, dtype=x.dtype, device=x.device)
    blocks = []
    for j in range(n):
        parts = (
            [f[j].reshape(-1, 1) for f in factors[:i]]
            + [eye]
            + [f[j].reshape(-1, 1) for f in factors[i + 1 :]]
        )
        block = parts[0]
        for p in parts[1:]:
            block = torch.kron(block, p)  # (K, k_i): the Khatri–Rao column as a map of z_j^(i)
        blocks.append(b1 @ block)  # (k_x, k_i)
    a = torch.block_diag(*blocks)  # (n·k_x, n·k_i)
    z_hat = factors[i].reshape(-1)  # vec of the k_i × n matrix = row-major flatten of (n, k_i)
    x_hat = x.reshape(-1)
    return (2.0 * a.T @ (a @ z_hat - x_hat)).reshape(n, k_i)
