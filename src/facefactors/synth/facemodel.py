"""The linear face model, discretised for one image size.

``vertices = mean + id_shape @ B_id + exp @ B_exp`` over a fixed set of
surface samples (:mod:`facefactors.synth.surfaces`). The samples are dense
enough for the requested image size, so a model is built (about a second)
and cached per size. Besides the rendered samples the model carries a few
non-rendered *virtual* vertices: the five landmarks and a fixed subsample of
the face (the same 3D points at every size), which is what datasets report
as ``vertices``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from facefactors.synth import albedo as AL
from facefactors.synth import anatomy as A
from facefactors.synth import expression as E
from facefactors.synth import identity as ID
from facefactors.synth import surfaces as S

# Bumped whenever the model (shape, texture, sampling) changes, so renderings
# cached on disk by other modules can be keyed on it.
MODEL_VERSION = "2"
# Samples per pixel: the 2x2 splat covers every pixel while the spacing stays
# under ~1.4 px; identities vary in scale, so leave some margin.
SPACING_PX = 1.5
# Pixels per mm at 112x112 for the largest faces after alignment.
_MAX_PX_PER_MM_112 = 0.575 * 1.12
SUBSAMPLE_GRID = (24, 22)  # (azimuth, elevation) lattice of the vertex subsample


@dataclass
class FaceModel:
    """Tensors of the discretised model (float32 unless noted).

    Vertices are ordered ``[virtual | moving | static]``: the non-rendered
    virtual vertices (landmarks, subsample) first, then rendered samples that
    expressions move, then rendered samples that never move. Expressions act
    on rows ``[0, n_exp)``; rows ``[first_render, V)`` are rendered.

    Attributes:
        size: image size the sampling density was chosen for.
        first_render: index of the first rendered vertex.
        n_exp: number of leading vertices that expressions move.
        mean: (3, V) mean vertices (mm, head frame), coordinates first.
        id_basis: (K_SHAPE, 3 * V) identity shape basis (x block, y block, z block).
        exp_basis: (K_EXP, 3 * n_exp) expression basis, same layout.
        nbr: (4, V) int64 grid neighbours (left, right, down, up).
        nbr_rel: (4, V) int64 the same minus the vertex's own index.
        regions: (R, NUM_REGIONS) albedo region weights of the rendered samples.
        wrinkle_cols: (Kw,) int64 expression coefficients that darken the albedo.
        wrinkles: (R, Kw) darkening per unit coefficient, rendered samples.
        landmarks: (5, 2) int64 vertex pairs averaged into the 5 landmarks.
        subsample: (Vs,) int64 vertices reported as ``vertices``.
    """

    size: int
    first_render: int
    n_exp: int
    mean: torch.Tensor
    id_basis: torch.Tensor
    exp_basis: torch.Tensor
    nbr: torch.Tensor
    nbr_rel: torch.Tensor
    regions: torch.Tensor
    wrinkle_cols: torch.Tensor
    wrinkles: torch.Tensor
    landmarks: torch.Tensor
    subsample: torch.Tensor

    @property
    def num_vertices(self) -> int:
        return self.mean.shape[1]

    @property
    def num_render(self) -> int:
        return self.num_vertices - self.first_render


def _skin_points(theta: np.ndarray, phi: np.ndarray, part: np.ndarray) -> S.Surface:
    pos, ref = A.skin_surface(theta, phi)
    n = len(theta)
    return S.Surface(pos, ref, theta, part.astype(np.int8), np.zeros((n, 4), np.int64))


def _theta_for_x(x: float, phi: float) -> float:
    """Azimuth whose base point has reference x at elevation phi (bisection)."""
    lo, hi = -np.pi / 2, np.pi / 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if A.head_base(np.array([mid]), np.array([phi]))[0, 0] < x:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _subsample_lattice() -> tuple[S.Surface, np.ndarray]:
    """The (elevation, azimuth) lattice of the vertex subsample, row-major, and its keep mask.

    Returns:
        ``(surface of all nph * nt lattice points, keep (nph * nt,) bool)``; points in
        the eye openings are not kept.
    """
    nt, nph = SUBSAMPLE_GRID
    tt, pp = np.meshgrid(
        np.linspace(-75, 75, nt) * np.pi / 180,
        np.linspace(np.arcsin(-112 / 118), np.arcsin(60 / 128), nph),
    )
    tt, pp = tt.ravel(), pp.ravel()
    sub = _skin_points(tt, pp, np.where(pp < S.PHI_MOUTH, S.SKIN_LOWER, S.SKIN_UPPER))
    return sub, ~A.in_eye_opening(sub.ref[:, 0], sub.ref[:, 1])


@functools.lru_cache(maxsize=1)
def subsample_triangles() -> np.ndarray:
    """Triangles over the vertex subsample (the ``vertices`` datasets report): a mesh.

    Each lattice cell whose four corners are all kept gives two triangles, wound
    counter-clockwise seen from the front (+z towards the camera), so outward normals
    point at the viewer.

    Returns:
        (T, 3) int64 indices into the subsample, i.e. into ``vertices[:, k]``.
    """
    nt, nph = SUBSAMPLE_GRID
    _sub, keep = _subsample_lattice()
    index = np.full(keep.shape, -1, dtype=np.int64)
    index[keep] = np.arange(int(keep.sum()))
    grid = index.reshape(nph, nt)  # rows: elevation (bottom to top), columns: azimuth
    a, b = grid[:-1, :-1].ravel(), grid[:-1, 1:].ravel()  # lower-left, lower-right
    c, d = grid[1:, :-1].ravel(), grid[1:, 1:].ravel()  # upper-left, upper-right
    ok = (a >= 0) & (b >= 0) & (c >= 0) & (d >= 0)
    tris = np.concatenate([np.stack([a, b, d], 1)[ok], np.stack([a, d, c], 1)[ok]])
    return np.ascontiguousarray(tris)


def _virtual_vertices() -> tuple[S.Surface, np.ndarray, np.ndarray]:
    """Landmark and subsample points (same 3D points at every size).

    Returns:
        ``(surface, landmark pairs (5, 2), subsample indices)`` local to the surface.
    """
    ax, ay, az = A.EYEBALL_AXES
    eyes = np.array([[-A.EYE_X, A.EYE_Y, A.EYEBALL_Z + az], [A.EYE_X, A.EYE_Y, A.EYEBALL_Z + az]])
    eye_s = S.Surface(
        eyes,
        eyes[:, :2].copy(),
        np.zeros(2),
        np.full(2, S.EYE, np.int8),
        np.zeros((2, 4), np.int64),
    )
    phi_tip = float(np.arcsin(-37.0 / 118.0))
    th_c = _theta_for_x(A.MOUTH_CORNER_X, S.PHI_MOUTH)
    th = np.array([0.0, -th_c, -th_c, th_c, th_c])
    ph = np.array([phi_tip, S.PHI_MOUTH, S.PHI_MOUTH, S.PHI_MOUTH, S.PHI_MOUTH])
    parts = np.array([S.SKIN_UPPER, S.SKIN_UPPER, S.SKIN_LOWER, S.SKIN_UPPER, S.SKIN_LOWER])
    lm_s = _skin_points(th, ph, parts)
    pairs = np.array([[0, 0], [1, 1], [2, 2], [3, 4], [5, 6]])
    sub, keep = _subsample_lattice()
    sub = S.Surface(sub.pos[keep], sub.ref[keep], sub.theta[keep], sub.part[keep], sub.nbr[keep])
    surf = S.concat([eye_s, lm_s, sub])
    surf.nbr = np.repeat(np.arange(len(surf))[:, None], 4, axis=1)
    return surf, pairs, np.arange(7, len(surf))


def spacing_mm(size: int) -> float:
    """Sample spacing (mm) that keeps the splats hole-free at ``size`` pixels."""
    return SPACING_PX / (_MAX_PX_PER_MM_112 * size / 112.0)


def _reorder(surf: S.Surface, order: np.ndarray) -> S.Surface:
    """Permute samples (and remap neighbour indices)."""
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    return S.Surface(
        surf.pos[order], surf.ref[order], surf.theta[order], surf.part[order], inv[surf.nbr[order]]
    )


@functools.lru_cache(maxsize=4)
def face_model(size: int) -> FaceModel:
    """Build (or fetch from the cache) the model sampled for ``size`` x ``size`` images."""
    rendered = S.build_head(spacing_mm(size))
    virtual, pairs, sub = _virtual_vertices()
    nv = len(virtual)
    surf = S.concat([virtual, rendered])
    exp_f = E.au_fields(surf)  # (V, 3, Ke)
    # Samples an expression moves by more than ~0.01 pixel go first.
    moving = np.abs(exp_f).reshape(len(surf), -1).max(axis=1) > 0.01
    moving[:nv] = True
    order = np.concatenate([np.arange(nv), nv + np.argsort(~moving[nv:], kind="stable")])
    surf = _reorder(surf, order)
    exp_f = exp_f[order]
    n_exp = int(moving.sum())
    v = len(surf)
    id_f = ID.shape_fields(surf)  # (V, 3, K)
    blur = spacing_mm(size) / 3.0
    wr = np.mean([E.wrinkle_fields(c) for c in AL.jittered(surf, blur)], axis=0)[nv:]
    cols = np.nonzero(np.abs(wr).max(axis=0) > 1e-6)[0]

    def t32(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return FaceModel(
        size=size,
        first_render=nv,
        n_exp=n_exp,
        mean=t32(surf.pos.T),
        id_basis=t32(id_f.transpose(2, 1, 0).reshape(ID.K_SHAPE, 3 * v)),
        exp_basis=t32(exp_f[:n_exp].transpose(2, 1, 0).reshape(exp_f.shape[2], -1)),
        nbr=torch.from_numpy(np.ascontiguousarray(surf.nbr.T, dtype=np.int64)),
        nbr_rel=torch.from_numpy(np.ascontiguousarray(surf.nbr.T - np.arange(v), dtype=np.int64)),
        regions=t32(AL.region_weights(surf, blur)[nv:]),
        wrinkle_cols=torch.from_numpy(cols.astype(np.int64)),
        wrinkles=t32(wr[:, cols]),
        landmarks=torch.from_numpy(pairs),
        subsample=torch.from_numpy(sub),
    )


def batch_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for (N, K) @ (K, M) whose rows do not depend on N.

    BLAS takes a different (matrix-vector) path for a single row, which rounds
    differently; padding to two rows keeps a sample bit-identical whether it
    is rendered alone or in a batch.
    """
    if a.shape[0] == 1:
        return (torch.cat([a, a]) @ b)[:1]
    return a @ b


def identity_vertices(model: FaceModel, shape_coeffs: torch.Tensor) -> torch.Tensor:
    """Neutral vertices of identities.

    Args:
        shape_coeffs: (N, K_SHAPE) float32.

    Returns:
        (N, 3, V) vertices in mm.
    """
    n = shape_coeffs.shape[0]
    return model.mean + batch_matmul(shape_coeffs, model.id_basis).view(n, 3, -1)


def expression_offsets(model: FaceModel, exp_coeffs: torch.Tensor) -> torch.Tensor:
    """Expression displacement of the leading ``n_exp`` vertices.

    Args:
        exp_coeffs: (N, K_EXP) float32 per-side AU activations.

    Returns:
        (N, 3, n_exp) offsets in mm.
    """
    return batch_matmul(exp_coeffs, model.exp_basis).view(exp_coeffs.shape[0], 3, model.n_exp)


def add_expression(model: FaceModel, verts: torch.Tensor, exp_coeffs: torch.Tensor) -> torch.Tensor:
    """Vertices with the expression applied (a new tensor).

    Args:
        verts: (N, 3, V) neutral vertices.
        exp_coeffs: (N, K_EXP) float32.

    Returns:
        (N, 3, V).
    """
    out = verts.clone()
    out[:, :, : model.n_exp] += expression_offsets(model, exp_coeffs)
    return out


def landmarks3d(model: FaceModel, verts: torch.Tensor) -> torch.Tensor:
    """The 5 landmarks (left eye, right eye, nose, left / right mouth corner; image sides).

    Args:
        verts: (N, 3, V) vertices (mm, or projected pixels).

    Returns:
        (N, 5, 3).
    """
    pair = verts[:, :, model.landmarks[:, 0]] + verts[:, :, model.landmarks[:, 1]]
    return 0.5 * pair.transpose(1, 2)
