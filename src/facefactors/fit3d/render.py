"""The synthetic renderer made differentiable in everything but visibility.

:func:`render_fit` draws our linear face model (:mod:`facefactors.synth.facemodel`)
with the renderer's own steps (:mod:`facefactors.synth.render`): the z-buffer picks
the winning surface sample of every pixel (a discrete choice, computed on detached
points), then the pixel's normal (from the sample's grid neighbours), albedo and SH
shading are gathered and computed with autograd on. Gradients therefore reach the
shape and expression coefficients and the rotation through the normals and the
landmarks, the albedo and light through the colours, but not through *which* sample
covers a pixel; re-running visibility at every step of the fit keeps it current
(the "fixed visibility" linearisation of a differentiable rasteriser).

The albedo of a fit comes from a linear albedo model: the generator's colours
(:func:`facefactors.synth.identity.region_colours`, a non-linear function of the 15
albedo parameters) linearised about the mean identity by central differences, so
``albedo = A0 + A1 @ a`` per rendered sample (:func:`albedo_basis`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from facefactors.synth import facemodel as FM
from facefactors.synth import identity as ID
from facefactors.synth import render as R
from facefactors.synth.shading import sh_shading_maps

_ALBEDO_STEP = 0.05  # central-difference step of the albedo linearisation


@dataclass
class AlbedoBasis:
    """Linear albedo of the rendered samples: ``albedo(a) = mean + basis @ (a - a0)``.

    Attributes:
        a0: (K_ALBEDO,) the expansion point (the mean identity's albedo parameters).
        mean: (3, R) albedo at ``a0``.
        basis: (K_ALBEDO, 3 * R) change per unit parameter (R block per channel).
    """

    a0: torch.Tensor
    mean: torch.Tensor
    basis: torch.Tensor


@functools.lru_cache(maxsize=4)
def albedo_basis(size: int) -> AlbedoBasis:
    """The generator's albedo linearised about the mean identity (cached per size)."""
    model = FM.face_model(size)
    a0 = ID.mean_identity()[ID.K_SHAPE :]

    def colours(a: np.ndarray) -> torch.Tensor:
        c = torch.as_tensor(ID.region_colours(a), dtype=torch.float32)  # (NUM_REGIONS, 3)
        return (model.regions @ c).T  # (3, R)

    cols = []
    for k in range(ID.K_ALBEDO):
        step = np.zeros(ID.K_ALBEDO)
        step[k] = _ALBEDO_STEP
        cols.append(((colours(a0 + step) - colours(a0 - step)) / (2 * _ALBEDO_STEP)).reshape(-1))
    return AlbedoBasis(
        torch.as_tensor(a0, dtype=torch.float32), colours(a0), torch.stack(cols).contiguous()
    )


def linear_albedo(size: int, params: torch.Tensor) -> torch.Tensor:
    """Per-sample albedo of albedo parameters under the linear model.

    Args:
        params: (N, K_ALBEDO) albedo parameters.

    Returns:
        (N, 3, R) linear RGB albedo of the rendered samples, clipped to [0.01, 1].
    """
    ab = albedo_basis(size)
    n = params.shape[0]
    delta = (params - ab.a0) @ ab.basis
    return (ab.mean + delta.view(n, 3, -1)).clamp(0.01, 1.0)


def exact_albedo(size: int, params: np.ndarray) -> torch.Tensor:
    """Per-sample albedo of albedo parameters as the generator computes it (no gradient).

    Args:
        params: (N, K_ALBEDO).

    Returns:
        (N, 3, R).
    """
    model = FM.face_model(size)
    out = [
        (model.regions @ torch.as_tensor(ID.region_colours(a), dtype=torch.float32)).T
        for a in np.asarray(params, dtype=np.float64)
    ]
    return torch.stack(out)


def model_vertices(model: FM.FaceModel, shape: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """Expressive head-frame vertices of every model vertex.

    Args:
        shape: (N, K_SHAPE) identity shape coefficients.
        exp: (N, 2 * NUM_AUS) expression coefficients.

    Returns:
        (N, 3, V) mm (differentiable in both).
    """
    verts = FM.identity_vertices(model, shape)
    off = FM.expression_offsets(model, exp)
    pad = verts.new_zeros(verts.shape[0], 3, model.num_vertices - model.n_exp)
    return verts + torch.cat([off, pad], dim=2)


def camera(rot: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> tuple:
    """Weak-perspective map ``pixel = M @ p + t`` of the renderer's (column, row, depth).

    ``column = s (R p)_x + t_x``, ``row = -s (R p)_y + t_y``, ``depth = s (R p)_z``:
    the convention of :func:`facefactors.synth.scene.pose_transforms`.

    Args:
        rot: (N, 3, 3) rotations; scale: (N,) pixels per mm; shift: (N, 2) pixels.

    Returns:
        ``(M (N, 3, 3), t (N, 3))``.
    """
    flip = torch.tensor([1.0, -1.0, 1.0], dtype=rot.dtype)
    m = (scale[:, None] * flip)[:, :, None] * rot
    t = torch.cat([shift, shift.new_zeros(shift.shape[0], 1)], dim=1)
    return m, t


def render_fit(
    model: FM.FaceModel,
    verts: torch.Tensor,
    m: torch.Tensor,
    t: torch.Tensor,
    albedo: torch.Tensor,
    sh: torch.Tensor | None = None,
    darkening: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Render posed model vertices; differentiable except for visibility.

    Args:
        model: the face model the vertices belong to (its ``size`` is the image size).
        verts: (N, 3, V) head-frame vertices (mm).
        m, t: (N, 3, 3), (N, 3) the map to (column, row, depth) pixels.
        albedo: (N, 3, R) albedo of the rendered samples.
        sh: (N, 3, 9) lighting, or None for the surface maps only (no ``face``).
        darkening: optional (N, R) fraction of albedo removed (expression wrinkles).

    Returns:
        ``face`` (N, 3, H, W) = albedo * shading (meaningful where ``valid``; with
        ``sh`` only), ``albedo`` (N, 3, H, W) per pixel, ``alpha`` (N, 1, H, W) the soft mask, ``valid`` (N, 1, H, W) bool, ``normals``
        (N, 3, H, W) zero where not valid, ``landmarks`` (N, 5, 2) pixels, ``points``
        (N, 3, V) the projected vertices.
    """
    n, size = verts.shape[0], model.size
    first = model.first_render
    pts = torch.baddbmm(t[:, :, None], m, verts)
    bits = R.index_bits(model.num_render)
    with torch.no_grad():
        buf = R.new_zbuffer(n, size)
        R.splat_into(buf, *R.splat_keys(pts[:, :, first:].detach().float().clone(), 0, size, bits))
        winner = R.resolve(buf, n, size, bits)
    flat_alb = albedo.transpose(0, 1).reshape(3, -1)
    dark = None if darkening is None else darkening.reshape(-1)
    surf = R.surface_maps(winner, pts, first, model.nbr_rel, flat_alb, torch.arange(n), dark)
    valid = surf["valid"]
    out = {
        "albedo": surf["albedo"],
        "alpha": surf["alpha"],
        "valid": valid,
        "normals": surf["normals"] * valid,
        "landmarks": FM.landmarks3d(model, pts)[..., :2],
        "points": pts,
    }
    if sh is not None:
        out["face"] = shade(out["albedo"], out["normals"], sh)
    return out


def shade(albedo: torch.Tensor, normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """``albedo * max(E(n), 0)`` as the renderer shades, for (N, 3, H, W) maps and (N, 3, 9) SH."""
    return albedo * sh_shading_maps(normals, sh).clamp_min(0.0)
