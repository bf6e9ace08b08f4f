"""A vectorised point-splatting renderer with a z-buffer and deferred SH shading.

Surface samples are projected orthographically and each is splatted onto the
2x2 pixels around it. A single ``scatter_reduce(amin)`` over 64-bit keys
``(depth + footprint penalty) << 20 | sample index`` resolves visibility and
picks the winning sample per pixel in one pass, so occlusion is exact up to
the sampling density (the nose hides the far cheek). Attributes (albedo,
normal from the winning sample's grid neighbours) are then gathered per pixel
and shaded with second-order SH. The silhouette gets a one-pixel soft edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facefactors.synth.shading import sh_shading

_IDX_BITS = 20
_IDX_MASK = (1 << _IDX_BITS) - 1
_EMPTY = torch.iinfo(torch.int64).max
# Depth quantisation (key units per pixel of depth) and the penalty per squared
# pixel of distance between a sample and the pixel centre: samples of the same
# surface compete on distance, different surfaces on depth.
_DEPTH_Q = 64.0
_FOOT_PENALTY = 0.6
_PAD = 2


def splat(points: torch.Tensor, size: int) -> torch.Tensor:
    """Z-buffered 2x2 splatting.

    Args:
        points: (N, R, 3) sample positions: column, row (pixel units; pixel j
            covers [j, j+1)) and depth (larger = nearer the viewer), float32.
        size: output height and width H = W.

    Returns:
        (N, H, W) int64 index of the winning sample per pixel, -1 where empty.
    """
    n, r, _ = points.shape
    if r >= (1 << _IDX_BITS):
        raise ValueError(f"too many samples for the z-buffer keys: {r}")
    h = w = size
    hp, wp = h + 2 * _PAD, w + 2 * _PAD
    u = points[..., 0] - 0.5
    v = points[..., 1] - 0.5
    x0 = torch.floor(u)
    y0 = torch.floor(v)
    fx = u - x0
    fy = v - y0
    # Out-of-frame samples are clamped onto the invisible 2-pixel border.
    xi = x0.clamp_(-_PAD, w).to(torch.int64) + _PAD
    yi = y0.clamp_(-_PAD, h).to(torch.int64) + _PAD
    base = yi * wp + xi + (torch.arange(n, dtype=torch.int64) * (hp * wp))[:, None]
    zmax = points[..., 2].amax(dim=1, keepdim=True)
    depth = (zmax - points[..., 2]) * _DEPTH_Q
    pen = _FOOT_PENALTY * _DEPTH_Q
    px0 = fx * fx * pen
    px1 = (1.0 - fx) ** 2 * pen
    py0 = fy * fy * pen
    py1 = (1.0 - fy) ** 2 * pen
    idx = torch.arange(r, dtype=torch.int64)
    targets = torch.stack((base, base + 1, base + wp, base + wp + 1))
    keys = torch.stack((depth + px0 + py0, depth + px1 + py0, depth + px0 + py1, depth + px1 + py1))
    keys = (keys.to(torch.int64) << _IDX_BITS) | idx
    buf = torch.full((n * hp * wp,), _EMPTY, dtype=torch.int64)
    buf.scatter_reduce_(0, targets.reshape(-1), keys.reshape(-1), "amin")
    buf = buf.view(n, hp, wp)[:, _PAD : _PAD + h, _PAD : _PAD + w]
    return torch.where(buf == _EMPTY, -1, buf & _IDX_MASK)


def soft_mask(winner: torch.Tensor) -> torch.Tensor:
    """Coverage with a one-pixel anti-aliased edge.

    Args:
        winner: (N, H, W) winning sample index, -1 where empty.

    Returns:
        (N, H, W) float alpha in [0, 1]; isolated stray pixels get 0.
    """
    hit = (winner >= 0).to(torch.float32)[:, None]
    avg = F.avg_pool2d(hit, 3, stride=1, padding=1, count_include_pad=False)[:, 0]
    return (1.5 * avg - 0.25).clamp_(0.0, 1.0)


def fill_winners(winner: torch.Tensor) -> torch.Tensor:
    """Give empty pixels the sample of a covered 8-neighbour (for the soft edge).

    Args:
        winner: (N, H, W) int64, -1 where empty.

    Returns:
        (N, H, W) int64 with edge pixels filled where a neighbour is covered.
    """
    out = winner
    padded = F.pad(winner, (1, 1, 1, 1), value=-1)
    h, w = winner.shape[1:]
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)):
        nb = padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        out = torch.where(out < 0, nb, out)
    return out


def pixel_normals(points: torch.Tensor, nbr: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Unit normals at gathered samples from their grid neighbours.

    Args:
        points: (N, V, 3) projected samples (column, row, depth), all in pixel units.
        nbr: (V, 4) neighbour indices (left, right, down, up).
        flat: (P,) indices ``n * V + v`` of the samples to evaluate.

    Returns:
        (P, 3) normals in the camera frame (x right, y up, z toward the viewer).
    """
    v = points.shape[1]
    pts = points.reshape(-1, 3)
    sample = flat % v
    base = flat - sample
    nb = nbr[sample] + base[:, None]  # (P, 4)
    q = pts[nb.reshape(-1)].reshape(-1, 4, 3)
    du = q[:, 1] - q[:, 0]
    dv = q[:, 3] - q[:, 2]
    # Rows grow downward in the image: flip them back to "y up".
    du = du * du.new_tensor([1.0, -1.0, 1.0])
    dv = dv * dv.new_tensor([1.0, -1.0, 1.0])
    nrm = torch.linalg.cross(du, dv)
    return nrm / nrm.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def shade(
    points: torch.Tensor,
    n_render: int,
    nbr: torch.Tensor,
    albedo: torch.Tensor,
    albedo_slot: torch.Tensor,
    sh: torch.Tensor,
    background: torch.Tensor,
    wrinkles: torch.Tensor | None = None,
    wrinkle_weights: torch.Tensor | None = None,
    maps: bool = True,
) -> dict[str, torch.Tensor]:
    """Render projected samples into images (and optionally the intrinsic maps).

    Args:
        points: (N, V, 3) projected samples (column, row, depth) in pixels; the
            first ``n_render`` are splatted, the rest (landmarks) are ignored.
        n_render: number of visible samples.
        nbr: (V, 4) grid neighbours for normals.
        albedo: (M, V, 3) per-sample albedo of M identities, in [0, 1].
        albedo_slot: (N,) which identity row of ``albedo`` each image uses.
        sh: (N, 3, 9) lighting.
        background: (N, 3, H, W) in [0, 1].
        wrinkles: optional (V, K) darkening fields of the expression coefficients.
        wrinkle_weights: (N, K) expression coefficients matching ``wrinkles``.
        maps: also return mask, albedo, normals and shading.

    Returns:
        Dict with ``image`` (N, 3, H, W) in [0, 1] and, when ``maps``, ``mask``
        (N, 1, H, W), ``albedo``, ``normals`` and ``shading`` (N, 3, H, W),
        zero where the mask is zero. Before clipping to [0, 1],
        ``image = albedo * shading * mask + background * (1 - mask)``.
    """
    n, v, _ = points.shape
    size = background.shape[-1]
    winner = splat(points[:, :n_render], size)
    alpha = soft_mask(winner)
    filled = torch.where(alpha > 0, fill_winners(winner), -1)
    valid = filled >= 0
    nidx = torch.arange(n, dtype=torch.int64)[:, None, None]
    flat = (nidx * v + filled.clamp_min(0))[valid]
    nrm = pixel_normals(points, nbr, flat)
    slot = albedo_slot.to(torch.int64)[:, None, None].expand_as(filled)[valid]
    alb = albedo.reshape(-1, 3)[slot * v + filled[valid]]
    if wrinkles is not None and wrinkle_weights is not None:
        wk = wrinkles[filled[valid]]  # (P, K)
        img_of = nidx.expand_as(filled)[valid]
        factor = 1.0 - (wk * wrinkle_weights[img_of]).sum(-1, keepdim=True)
        alb = alb * factor.clamp(0.3, 1.5)
    normals = torch.zeros(n, size, size, 3)
    normals[valid] = nrm
    shading = sh_shading(normals, sh).clamp_min_(0.0)
    albedo_map = torch.zeros(n, size, size, 3)
    albedo_map[valid] = alb
    a = alpha[..., None]
    face = albedo_map * shading
    bg = background.permute(0, 2, 3, 1)
    image = (face * a + bg * (1.0 - a)).clamp_(0.0, 1.0)
    out = {"image": image.permute(0, 3, 1, 2).contiguous()}
    if maps:
        out["mask"] = alpha[:, None].contiguous()
        out["albedo"] = albedo_map.permute(0, 3, 1, 2).contiguous()
        out["normals"] = normals.permute(0, 3, 1, 2).contiguous()
        out["shading"] = (shading * valid[..., None]).permute(0, 3, 1, 2).contiguous()
    return out
