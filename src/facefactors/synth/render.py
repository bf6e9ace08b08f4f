"""A vectorised point-splatting renderer with a z-buffer and deferred SH shading.

Surface samples are projected orthographically and each is splatted onto the
2x2 pixels around it. One ``scatter_reduce(amin)`` over 32-bit keys
``(depth + footprint penalty) << bits | sample index`` resolves visibility
and picks the winning sample per pixel, so occlusion is exact up to the
sampling density (the nose hides the far cheek). The footprint penalty makes
samples of one surface compete on distance to the pixel centre, different
surfaces on depth. Attributes (albedo, a normal from the winner's grid
neighbours) are then gathered per pixel and shaded with second-order SH. The
silhouette gets a one-pixel soft edge and isolated holes are filled.

Points are kept structure-of-arrays, (N, 3, V), because 1-D ``index_select``
is several times faster than row gathers on CPU, and every step is dense
(no data-dependent shapes).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from facefactors.synth.shading import sh_shading_maps

EMPTY = torch.iinfo(torch.int32).max
PAD = 2  # invisible border that catches out-of-frame samples
_FOOT_PENALTY = 0.6  # pixels of depth per squared pixel of footprint distance


def index_bits(n_samples: int) -> int:
    """Bits of the key reserved for the sample index."""
    return max(int(n_samples).bit_length(), 1)


def _depth_scale(size: int, bits: int) -> float:
    """Key units per pixel of depth: the depth range 4 * size fills the other bits."""
    if bits > 24:
        raise ValueError(f"too many samples for 32-bit z-buffer keys ({bits} index bits)")
    return ((1 << (31 - bits)) - 1) / (4.0 * size + 2.0)


def new_zbuffer(n: int, size: int) -> torch.Tensor:
    """An empty z-buffer for ``n`` images of ``size`` x ``size`` (flat, padded, int32)."""
    return torch.full((n * (size + 2 * PAD) ** 2,), EMPTY, dtype=torch.int32)


def splat_keys(
    points: torch.Tensor, first: int, size: int, bits: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and keys of the 2x2 splats of projected samples.

    Args:
        points: (N, 3, R) samples as (column, row, depth) in pixels; pixel j
            covers [j, j+1) and larger depth is nearer the viewer.
        first: sample index of ``points[..., 0]``.
        size: image size.
        bits: :func:`index_bits` of the total number of samples.

    Returns:
        ``(targets (4, N, R) int64, keys (4, N, R) int32)`` for :func:`splat_into`.
    """
    n, _, r = points.shape
    wp = size + 2 * PAD
    q = _depth_scale(size, bits)
    u = points[:, 0] - 0.5
    v = points[:, 1] - 0.5
    x0 = torch.floor(u)
    y0 = torch.floor(v)
    fx = u.sub_(x0)
    fy = v.sub_(y0)
    # Flat index of the top-left target pixel; out-of-frame samples are clamped
    # onto the invisible border. Float arithmetic is exact below 2**24.
    dt = torch.float32 if n * wp * wp < (1 << 24) else torch.float64
    img = (torch.arange(n, dtype=dt) * (wp * wp) + PAD * (wp + 1)).view(n, 1)
    base = y0.to(dt).clamp_(-PAD, size).mul_(wp).add_(x0.to(dt).clamp_(-PAD, size)).add_(img)
    offsets = torch.tensor([0, 1, wp, wp + 1], dtype=torch.int64).view(4, 1, 1)
    targets = base.to(torch.int64).unsqueeze(0) + offsets
    # Depth is measured back from a plane in front of any face; the footprint
    # penalty (1 - fx)^2 = fx^2 + 1 - 2 fx is shared between the 4 targets.
    pen = _FOOT_PENALTY * q
    depth = points[:, 2].neg().add_(2.0 * size).clamp_(0.0, 4.0 * size).mul_(q)
    px0 = fx * fx * pen
    px1 = fx.mul_(-2.0 * pen).add_(pen).add_(px0)
    py0 = fy * fy * pen
    py1 = fy.mul_(-2.0 * pen).add_(pen).add_(py0)
    d0 = depth + py0
    d1 = depth.add_(py1)
    keys = torch.empty((4, n, r), dtype=torch.float32)
    torch.add(d0, px0, out=keys[0])
    torch.add(d0, px1, out=keys[1])
    torch.add(d1, px0, out=keys[2])
    torch.add(d1, px1, out=keys[3])
    idx = torch.arange(first, first + r, dtype=torch.int32)
    keys = keys.to(torch.int32).bitwise_left_shift_(bits).bitwise_or_(idx)
    return targets, keys


def splat_into(buf: torch.Tensor, targets: torch.Tensor, keys: torch.Tensor) -> None:
    """Z-test the splats into ``buf`` in place (keeps the smallest key per pixel)."""
    buf.scatter_reduce_(0, targets.reshape(-1), keys.reshape(-1), "amin")


def resolve(buf: torch.Tensor, n: int, size: int, bits: int) -> torch.Tensor:
    """Winning sample per pixel.

    Returns:
        (N, H, W) int64 sample index, -1 where no sample landed.
    """
    wp = size + 2 * PAD
    b = buf.view(n, wp, wp)[:, PAD : PAD + size, PAD : PAD + size].to(torch.int64)
    return torch.where(b == EMPTY, -1, b & ((1 << bits) - 1))


def _box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 box sum of an (N, H, W) map with zero padding."""
    p = F.pad(x, (1, 1, 1, 1))
    a = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]
    return a[:, :-2] + a[:, 1:-1] + a[:, 2:]


@functools.lru_cache(maxsize=8)
def _inverse_count(h: int, w: int) -> torch.Tensor:
    """1 / (number of in-frame pixels in each 3x3 neighbourhood), (1, H, W)."""
    return 1.0 / _box3(torch.ones(1, h, w))


def coverage(winner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft mask and hole-filled winners.

    A pixel's coverage is the covered fraction of its 3x3 neighbourhood,
    rescaled so straight edges get a one-pixel ramp, holes close and stray
    pixels vanish; empty pixels with some coverage take a covered neighbour's
    sample.

    Args:
        winner: (N, H, W) int64, -1 where empty.

    Returns:
        ``(alpha (N, H, W) float32, filled (N, H, W) int64, -1 where alpha is 0)``.
    """
    n, h, w = winner.shape
    hit = (winner >= 0).to(torch.float32)
    alpha = (_box3(hit) * _inverse_count(h, w)).mul_(2.0).sub_(0.5).clamp_(0.0, 1.0)
    p = F.pad(winner, (1, 1, 1, 1), value=-1)
    best = winner.clone()
    for dy in range(3):
        for dx in range(3):
            if dy != 1 or dx != 1:
                torch.maximum(best, p[:, dy : dy + h, dx : dx + w], out=best)
    filled = torch.where(hit > 0, winner, best)
    return alpha, filled.masked_fill_(alpha == 0, -1)


def pixel_normals(points: torch.Tensor, nbr_rel: torch.Tensor, vert: torch.Tensor) -> torch.Tensor:
    """Unit normals of the pixels' samples from their grid neighbours.

    Args:
        points: (N, 3, V) projected vertices (column, row, depth), pixel units.
        nbr_rel: (4, V) neighbour index minus own index (left, right, down, up).
        vert: (N, H, W) vertex index per pixel (any valid index where empty).

    Returns:
        (3, N, H, W) normals in the camera frame (x right, y up, z to the viewer).
    """
    n, _, v = points.shape
    own = vert.reshape(-1)
    flat = (vert + (torch.arange(n, dtype=torch.int64) * v).view(n, 1, 1)).reshape(-1)
    coords = [points[:, c].reshape(-1) for c in range(3)]
    q = []
    for k in range(4):
        idx = nbr_rel[k].index_select(0, own).add_(flat)
        q.append([c.index_select(0, idx) for c in coords])
    du = [a.sub_(b) for a, b in zip(q[1], q[0])]
    dv = [a.sub_(b) for a, b in zip(q[3], q[2])]
    # (col, row, depth) flips y: the camera-frame normal is -cross * (1, -1, 1).
    nx = du[2] * dv[1] - du[1] * dv[2]
    ny = du[2] * dv[0] - du[0] * dv[2]
    nz = du[1] * dv[0] - du[0] * dv[1]
    inv = torch.rsqrt((nx * nx).add_(ny * ny).add_(nz * nz).clamp_min_(1e-16))
    # Out of place: the fitter (facefactors.fit3d) differentiates through this.
    return torch.stack((nx * inv, ny * inv, nz * inv)).view(3, n, *vert.shape[1:])


def surface_maps(
    winner: torch.Tensor,
    points: torch.Tensor,
    first: int,
    nbr_rel: torch.Tensor,
    albedo: torch.Tensor,
    albedo_slot: torch.Tensor,
    darkening: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-pixel coverage, albedo and normals of resolved images.

    Args:
        winner: (N, H, W) sample index (relative to ``first``), -1 where empty.
        points: (N, 3, V) projected vertices (for normals).
        first: vertex index of sample 0.
        nbr_rel: (4, V) neighbour offsets (see :func:`pixel_normals`).
        albedo: (3, M * R) per-sample albedo of M identities.
        albedo_slot: (N,) int64 identity row of each image.
        darkening: optional (N * R,) fraction of albedo removed (wrinkles).

    Returns:
        ``alpha`` (N, 1, H, W), ``valid`` (N, 1, H, W) bool, ``albedo`` and
        ``normals`` (N, 3, H, W) (meaningless where not valid).
    """
    n, h, w = winner.shape
    alpha, filled = coverage(winner)
    s = filled.clamp_min(0)
    nrm = pixel_normals(points, nbr_rel, s + first)  # (3, N, H, W)
    r = points.shape[2] - first
    flat = (s + (albedo_slot * r).view(n, 1, 1)).reshape(-1)
    alb = torch.stack([albedo[c].index_select(0, flat) for c in range(3)]).view(3, n, h, w)
    if darkening is not None:
        own = (s + (torch.arange(n, dtype=torch.int64) * r).view(n, 1, 1)).reshape(-1)
        alb = alb * (1.0 - darkening.index_select(0, own).view(n, h, w)).clamp(0.3, 1.5)
    return {
        "alpha": alpha.unsqueeze(1),
        "valid": (filled >= 0).unsqueeze(1),
        "albedo": alb.transpose(0, 1),
        "normals": nrm.transpose(0, 1),
    }


def composite(
    surface: dict[str, torch.Tensor], sh: torch.Tensor, background: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shade surface maps under SH light over a background.

    Args:
        surface: :func:`surface_maps` output for N images.
        sh: (N, 3, 9) lighting.
        background: (N, 3, H, W) in [0, 1].

    Returns:
        ``(image (N, 3, H, W) in [0, 1], shading (N, 3, H, W))``.
    """
    shading = sh_shading_maps(surface["normals"], sh).clamp_min_(0.0)
    # Outside the mask alpha is 0, so meaningless albedo/shading never show.
    image = torch.lerp(background, surface["albedo"] * shading, surface["alpha"])
    return image.clamp_(0.0, 1.0), shading


def shade_pixels(
    winner: torch.Tensor,
    points: torch.Tensor,
    first: int,
    nbr_rel: torch.Tensor,
    albedo: torch.Tensor,
    albedo_slot: torch.Tensor,
    sh: torch.Tensor,
    background: torch.Tensor,
    darkening: torch.Tensor | None = None,
    maps: bool = True,
) -> dict[str, torch.Tensor]:
    """Deferred shading of resolved pixels (:func:`surface_maps` + :func:`composite`).

    Returns:
        ``image`` (N, 3, H, W) in [0, 1] and, with ``maps``, ``mask`` (N, 1, H, W),
        ``albedo``, ``normals``, ``shading`` (N, 3, H, W), zero where the mask is
        zero; before clipping ``image = albedo * shading * mask + background * (1 - mask)``.
    """
    surf = surface_maps(winner, points, first, nbr_rel, albedo, albedo_slot, darkening)
    image, shading = composite(surf, sh, background)
    out = {"image": image}
    if maps:
        valid = surf["valid"]
        out.update(
            mask=surf["alpha"],
            albedo=surf["albedo"] * valid,
            normals=surf["normals"] * valid,
            shading=shading * valid,
        )
    return out
