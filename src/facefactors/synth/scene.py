"""From factors to pixels: pose, 5-point alignment, and the three renders of a face.

Conventions (camera frame = head frame at zero pose):

- x to image right, y up, z toward the viewer; orthographic projection.
- ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``. Positive yaw turns the face to the
  subject's left, so the nose moves to image right. Positive pitch tilts the
  face down (the nose moves down). Positive roll turns the head
  counter-clockwise as seen in the image (the top of the head moves left).
- Alignment imitates 5-point crops: per identity, a scale and a vertical
  offset put the frontal neutral landmarks on the ArcFace template
  (horizontally the face midline sits at the image centre, which keeps
  mirror symmetry exact). A posed face is rotated about a pivot at the top of
  the neck and then shifted so its neutral landmark centroid stays where the
  frontal one was; image and neutral therefore share one transform.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from facefactors.constants import arcface_template
from facefactors.synth import anatomy as A
from facefactors.synth import facemodel as FM
from facefactors.synth import identity as ID
from facefactors.synth import render as R


@dataclass
class Factors:
    """Factors of N faces (numpy arrays, first axis N).

    Attributes:
        id_coeffs: (N, K_SHAPE + K_ALBEDO) identity coefficients.
        exp_coeffs: (N, 2 * NUM_AUS) per-side AU activations.
        yaw, pitch, roll: (N,) degrees.
        sh: (N, 3, 9) lighting.
        background: (N, 3, 4, 4) background colour grid in [0, 1].
        expression: (N,) canonical class index, -1 when not a prototype sample.
        identity: (N,) global identity index, -1 for hand-made identities.
    """

    id_coeffs: np.ndarray
    exp_coeffs: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    sh: np.ndarray
    background: np.ndarray
    expression: np.ndarray
    identity: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw)

    @staticmethod
    def stack(items: list[Factors]) -> Factors:
        """Concatenate several Factors along the first axis."""
        return Factors(
            **{f.name: np.concatenate([getattr(i, f.name) for i in items]) for f in fields(Factors)}
        )


def rotation_matrix(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``Rz(roll) @ Rx(pitch) @ Ry(yaw)`` for angles in degrees.

    Args:
        yaw, pitch, roll: (N,) arrays.

    Returns:
        (N, 3, 3) float64 rotation matrices.
    """
    y, p, r = (np.radians(np.asarray(a, dtype=np.float64)) for a in (yaw, pitch, roll))
    n = y.shape[0]
    o, z = np.ones(n), np.zeros(n)
    ry = np.stack([np.cos(y), z, np.sin(y), z, o, z, -np.sin(y), z, np.cos(y)], -1)
    rx = np.stack([o, z, z, z, np.cos(p), -np.sin(p), z, np.sin(p), np.cos(p)], -1)
    rz = np.stack([np.cos(r), -np.sin(r), z, np.sin(r), np.cos(r), z, z, z, o], -1)
    return rz.reshape(n, 3, 3) @ rx.reshape(n, 3, 3) @ ry.reshape(n, 3, 3)


def frontal_alignment(lm: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and row offset that fit frontal landmarks to the ArcFace template.

    ``column = s * x + size / 2`` and ``row = -s * y + c`` (least squares over
    the 5 points with the column offset fixed).

    Args:
        lm: (N, 5, 3) frontal neutral landmarks (mm).

    Returns:
        ``(s (N,), c (N,))``.
    """
    tpl = torch.as_tensor(arcface_template(size), dtype=lm.dtype)
    x, y = lm[..., 0], lm[..., 1]
    tx = tpl[:, 0] - size / 2.0
    yc = y - y.mean(dim=1, keepdim=True)
    ty = tpl[:, 1] - tpl[:, 1].mean()
    s = ((x * tx).sum(1) - (yc * ty).sum(1)) / ((x * x).sum(1) + (yc * yc).sum(1))
    c = tpl[:, 1].mean() + s * y.mean(dim=1)
    return s, c


def pose_transforms(
    lm_neutral: torch.Tensor, rot: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine maps from head-frame mm to (column, row, depth) pixels.

    Args:
        lm_neutral: (N, 5, 3) neutral landmarks of each face.
        rot: (N, 3, 3) head rotations.

    Returns:
        ``(M (N, 3, 3), t (N, 3))`` with ``pixel = M @ p + t``.
    """
    s, c = frontal_alignment(lm_neutral, size)
    flip = torch.tensor([1.0, -1.0, 1.0])
    scale = s[:, None] * flip  # (N, 3)
    pivot = torch.as_tensor(A.PIVOT, dtype=torch.float32)
    m = scale[:, :, None] * rot
    centre = torch.stack([torch.full_like(s, size / 2.0), c, torch.zeros_like(s)], -1)
    t = scale * (pivot - rot @ pivot) + centre
    # Keep the neutral landmark centroid where the frontal face has it.
    cen = lm_neutral.mean(dim=1)  # (N, 3)
    posed = (m @ cen[:, :, None])[..., 0] + t
    frontal = scale * cen + centre
    t[:, :2] += frontal[:, :2] - posed[:, :2]
    return m, t


def project(verts: torch.Tensor, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(N, 3, V) head-frame points -> (N, 3, V) (column, row, depth) pixels."""
    return torch.baddbmm(t[:, :, None], m, verts)


def background_images(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, g, g) colour grids -> (N, 3, size, size) smooth backgrounds.

    Bilinear interpolation with the grid's corner values at the image corners
    (like ``align_corners=True``), done as two small matrix products.
    """
    g = grid.shape[-1]
    pos = torch.linspace(0.0, g - 1.0, size)
    w = (1.0 - (pos[:, None] - torch.arange(g, dtype=torch.float32)).abs()).clamp_min(0.0)
    return w @ grid @ w.T


def _albedo_table(model: FM.FaceModel, id_coeffs: np.ndarray) -> torch.Tensor:
    """(3, U * R) albedo of the rendered samples for U identities."""
    rows = []
    for a in id_coeffs[:, ID.K_SHAPE :]:
        colours = torch.as_tensor(ID.region_colours(a), dtype=torch.float32)
        rows.append(model.regions @ colours)  # same shapes for every identity
    return torch.stack(rows).permute(2, 0, 1).reshape(3, -1)


def render_batch(
    f: Factors,
    size: int,
    neutral: bool = True,
    frontal: bool = True,
    maps: bool = True,
    texture_exp: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Render N faces.

    Work that depends on the identity only (neutral vertices, albedo, the whole
    frontal neutral face up to its lighting) is done once per distinct
    identity in the batch, and the image and its neutral twin share the
    z-buffer of every sample that expressions never move. A sample renders to
    the same bits alone or in any batch.

    Args:
        f: the factors.
        size: image height and width in pixels (>= 32).
        neutral: also render the same face with zero expression.
        frontal: also render the frontal neutral face (zero pose).
        maps: also return mask, normals, albedo, shading and background.
        texture_exp: (N, 2 * NUM_AUS) expression coefficients that darken the skin
            (wrinkles), the only expression-dependent texture; default ``f.exp_coeffs``.
            Another value changes the geometry only and keeps that texture, as a
            3DMM edit does (the tensorial evaluation's oracle baseline).

    Returns:
        ``image`` (and ``neutral``, ``frontal_neutral``): (N, 3, H, W) in [-1, 1];
        ``mask`` (N, 1, H, W); ``normals`` (N, 3, H, W) unit vectors in the
        camera frame; ``albedo``, ``shading``, ``background``: (N, 3, H, W) in
        linear units, with ``(image + 1) / 2 = clip(albedo * shading * mask +
        background * (1 - mask))``; ``landmarks5`` (N, 5, 2) pixels;
        ``vertices`` (N, Vs, 3) expressive head-frame mm (no pose);
        ``rotation`` (N, 3, 3).
    """
    model = FM.face_model(size)
    n = len(f)
    uniq, inverse = np.unique(
        np.asarray(f.id_coeffs, dtype=np.float64), axis=0, return_inverse=True
    )
    slot = torch.as_tensor(inverse.reshape(-1), dtype=torch.int64)
    exp = torch.tensor(np.asarray(f.exp_coeffs), dtype=torch.float32)
    rot = torch.as_tensor(rotation_matrix(f.yaw, f.pitch, f.roll), dtype=torch.float32)
    sh = torch.tensor(np.asarray(f.sh), dtype=torch.float32)
    grid = torch.tensor(np.asarray(f.background), dtype=torch.float32)
    bg = background_images(grid, size)

    first, ne = model.first_render, model.n_exp
    bits = R.index_bits(model.num_render)
    v_uniq = FM.identity_vertices(model, torch.tensor(uniq[:, : ID.K_SHAPE], dtype=torch.float32))
    lm_uniq = FM.landmarks3d(model, v_uniq)
    alb = _albedo_table(model, uniq)
    v_id = v_uniq.index_select(0, slot)
    offsets = FM.expression_offsets(model, exp)
    m, t = pose_transforms(lm_uniq.index_select(0, slot), rot, size)
    p_neu = project(v_id, m, t)
    p_img = p_neu.clone()
    p_img[:, :, :ne] += torch.bmm(m, offsets)
    tex = exp if texture_exp is None else torch.tensor(np.asarray(texture_exp), dtype=torch.float32)
    dark = FM.batch_matmul(tex[:, model.wrinkle_cols], model.wrinkles.T).reshape(-1)  # (N * R,)

    def splat(buf, pts, lo, hi):
        R.splat_into(buf, *R.splat_keys(pts[:, :, lo:hi], lo - first, size, bits))

    def shade(buf, pts, darkening=None, with_maps=False):
        winner = R.resolve(buf, n, size, bits)
        return R.shade_pixels(
            winner, pts, first, model.nbr_rel, alb, slot, sh, bg, darkening, maps=with_maps
        )

    buf = R.new_zbuffer(n, size)
    splat(buf, p_neu, ne, None)  # samples no expression moves: shared
    buf_neutral = buf.clone() if neutral else None
    splat(buf, p_img, first, ne)
    out = shade(buf, p_img, dark, with_maps=maps)
    result = {"image": out["image"] * 2.0 - 1.0}
    if maps:
        result.update({k: out[k] for k in ("mask", "albedo", "normals", "shading")})
        result["background"] = bg
    if neutral:
        splat(buf_neutral, p_neu, first, ne)
        result["neutral"] = shade(buf_neutral, p_neu)["image"] * 2.0 - 1.0
    if frontal:
        result["frontal_neutral"] = _frontal(model, v_uniq, lm_uniq, alb, slot, sh, bg) * 2 - 1
    result["landmarks5"] = FM.landmarks3d(model, p_img)[..., :2]
    verts = v_id[:, :, model.subsample] + offsets[:, :, model.subsample]
    result["vertices"] = verts.transpose(1, 2)
    result["rotation"] = rot
    return result


def _frontal(model, v_uniq, lm_uniq, alb, slot, sh, bg) -> torch.Tensor:
    """Frontal neutral images in [0, 1]: surfaces per identity, lighting per sample."""
    u, size = v_uniq.shape[0], bg.shape[-1]
    first, bits = model.first_render, R.index_bits(model.num_render)
    m0, t0 = pose_transforms(lm_uniq, torch.eye(3).expand(u, 3, 3), size)
    pts = project(v_uniq, m0, t0)
    buf = R.new_zbuffer(u, size)
    R.splat_into(buf, *R.splat_keys(pts[:, :, first:], 0, size, bits))
    winner = R.resolve(buf, u, size, bits)
    surf = R.surface_maps(winner, pts, first, model.nbr_rel, alb, torch.arange(u))
    per_sample = {k: v.index_select(0, slot) for k, v in surf.items()}
    return R.composite(per_sample, sh, bg)[0]
