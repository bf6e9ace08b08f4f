"""Sampling the head into point grids ("sheets") dense enough for splatting.

Every part of the head is a 2D grid of surface samples: the skin (a main
grid plus finer patches where the surface is steep or stretches under
expression), the two eyeballs, the upper and lower mouth interior, and the
neck. A grid gives each sample four neighbours, from which the renderer
computes normals after deformation. Neighbours are cut across the mouth line
(the lips separate) and around the eye openings (the skin has a hole there).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from facefactors.synth import anatomy as A

# Part codes.
SKIN_UPPER, SKIN_LOWER, EYE, MOUTH_UPPER, MOUTH_LOWER, NECK = range(6)
PART_NAMES = ("skin_upper", "skin_lower", "eye", "mouth_upper", "mouth_lower", "neck")

_DEG = np.pi / 180.0
PHI_MOUTH = float(np.arcsin(A.MOUTH_Y / 118.0))  # the lip line is a grid row boundary
THETA_RANGE = (-128.0 * _DEG, 128.0 * _DEG)


@dataclass
class Surface:
    """A set of surface samples with grid neighbours.

    Attributes:
        pos: (n, 3) mean positions (mm, head frame).
        ref: (n, 2) reference coordinates (x, y) that the fields are defined on.
        theta: (n,) skin azimuth (radians); 0 for non-skin parts.
        part: (n,) part code.
        nbr: (n, 4) neighbour indices (left, right, down, up); a sample is its own
            neighbour across a cut or at a border.
    """

    pos: np.ndarray
    ref: np.ndarray
    theta: np.ndarray
    part: np.ndarray
    nbr: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)


def _arc_grid(profile: tuple[np.ndarray, np.ndarray], spacing: float) -> np.ndarray:
    """Parameter values spaced by ``spacing`` of arc length.

    Args:
        profile: ``(t, s)`` from :func:`_arc_profile`.
    """
    t, s = profile
    n = max(int(np.ceil(s[-1] / spacing)), 2)
    return np.interp(np.linspace(0.0, s[-1], n + 1), s, t)


@functools.cache
def _arc_profile(axis: str, lo: float, hi: float, others: tuple, features: bool, oblique: bool):
    """Cumulative arc length along one parameter, the largest over ``others``.

    Args:
        axis: ``"theta"`` (others are elevations) or ``"phi"`` (others are azimuths).
        lo, hi: parameter range (radians).
        others: values of the other parameter to take the maximum over.
        features: measure the featured skin (else the smooth base head).
        oblique: weight azimuths beyond 60 degrees down (see :func:`_oblique_weight`).

    Returns:
        ``(t (1001,), s (1001,))`` parameter values and arc length from ``lo``.
    """
    t = np.linspace(lo, hi, 1001)
    tt, oo = np.meshgrid(t, np.asarray(others))
    th, ph = (tt, oo) if axis == "theta" else (oo, tt)
    d = np.array([1e-4, 0.0]) if axis == "theta" else np.array([0.0, 1e-4])
    surf = (lambda a, b: A.skin_surface(a, b)[0]) if features else A.head_base
    a = surf((th - d[0]).ravel(), (ph - d[1]).ravel())
    b = surf((th + d[0]).ravel(), (ph + d[1]).ravel())
    speed = (np.linalg.norm(b - a, axis=-1) / 2e-4).reshape(tt.shape).max(axis=0)
    if oblique:
        speed = speed * _oblique_weight(t)
    s = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * np.diff(t))])
    return t, s


def _grid_neighbours(keep: np.ndarray, connect_v: np.ndarray, connect_h: np.ndarray) -> np.ndarray:
    """Neighbour table of the kept cells of a (rows, cols) grid.

    ``keep`` is updated in place: a cell that still has no neighbour along an
    axis (no tangent, hence no normal) is dropped.

    Args:
        keep: (r, c) bool, cells that become samples.
        connect_v: (r-1, c) bool, whether row i and i+1 are joined.
        connect_h: (r, c-1) bool, whether column j and j+1 are joined.

    Returns:
        (n, 4) neighbour indices into the kept cells, in row-major order.
    """
    r, c = keep.shape
    idx = np.full((r, c), -1, dtype=np.int64)
    idx[keep] = np.arange(int(keep.sum()))
    left = np.full_like(idx, -1)
    right = np.full_like(idx, -1)
    down = np.full_like(idx, -1)
    up = np.full_like(idx, -1)
    left[:, 1:] = np.where(connect_h, idx[:, :-1], -1)
    right[:, :-1] = np.where(connect_h, idx[:, 1:], -1)
    down[1:, :] = np.where(connect_v, idx[:-1, :], -1)
    up[:-1, :] = np.where(connect_v, idx[1:, :], -1)
    # A sample squeezed between removed cells would get no tangent along that
    # axis: let it reach up to 4 cells further on one side instead.
    for d in (2, 3, 4):
        if d >= min(r, c):
            break
        lone = keep & (left < 0) & (right < 0)
        right[:, :-d] = np.where(lone[:, :-d] & keep[:, d:], idx[:, d:], right[:, :-d])
        lone = keep & (left < 0) & (right < 0)
        left[:, d:] = np.where(lone[:, d:] & keep[:, :-d], idx[:, :-d], left[:, d:])
        joined = np.ones((r - d, c), bool)
        for k in range(d):
            joined &= connect_v[k : r - d + k]
        lone = keep & (down < 0) & (up < 0)
        up[:-d] = np.where(lone[:-d] & keep[d:] & joined, idx[d:], up[:-d])
        lone = keep & (down < 0) & (up < 0)
        down[d:] = np.where(lone[d:] & keep[:-d] & joined, idx[:-d], down[d:])
    orphan = keep & (((left < 0) & (right < 0)) | ((down < 0) & (up < 0)))
    if orphan.any():
        keep &= ~orphan
        return _grid_neighbours(keep, connect_v, connect_h)
    out = np.stack([left, right, down, up], axis=-1)[keep]
    own = idx[keep][:, None]
    return np.where(out < 0, own, out)


def _skin_grid(theta: np.ndarray, phi: np.ndarray, exclude: list[tuple]) -> Surface:
    th, ph = np.meshgrid(theta, phi)
    th, ph = th.ravel(), ph.ravel()
    pos, ref = A.skin_surface(th, ph)
    r, c = len(phi), len(theta)
    hole = A.in_eye_opening(ref[:, 0], ref[:, 1]).reshape(r, c)
    inside = np.zeros((r, c), dtype=bool)
    for t0, t1, p0, p1 in exclude:
        inside |= ((th > t0) & (th < t1) & (ph > p0) & (ph < p1)).reshape(r, c)
    keep = ~hole & ~inside
    lower = (ph < PHI_MOUTH).reshape(r, c)
    connect_v = lower[:-1] == lower[1:]
    connect_h = np.ones((r, c - 1), dtype=bool)
    nbr = _grid_neighbours(keep, connect_v, connect_h)
    k = keep.ravel()
    part = np.where(lower.ravel()[k], SKIN_LOWER, SKIN_UPPER)
    return Surface(pos[k], ref[k], th[k], part.astype(np.int8), nbr)


def _oblique_weight(t: np.ndarray) -> np.ndarray:
    # Beyond 60 degrees of azimuth the head is only ever seen obliquely at the
    # pose limits, so fewer columns cover it.
    return np.maximum(np.cos(np.clip(np.abs(t) - 60 * _DEG, 0.0, None)), 0.4)


def _patch_box(x0, x1, y0, y1):
    """(theta0, theta1, phi0, phi1) covering a reference box on the front of the face."""
    p0 = np.arcsin(np.clip(y0 / (118.0 if y0 < 0 else 128.0), -1, 1))
    p1 = np.arcsin(np.clip(y1 / (118.0 if y1 < 0 else 128.0), -1, 1))
    w = 72.0
    return np.arcsin(x0 / w), np.arcsin(x1 / w), p0, p1


# Refined skin patches: (x0, x1, y0, y1) in mm and density multiplier.
_PATCHES = (
    ((-50.0, -13.5, -10.0, 24.0), 2.0),  # right eye and lids (they stretch when closing)
    ((13.5, 50.0, -10.0, 24.0), 2.0),  # left eye
    ((-13.5, 13.5, -52.0, -10.0), 1.7),  # nose (steep flanks)
    ((-42.0, 42.0, -100.0, -52.0), 1.5),  # mouth and chin (stretch when the jaw drops)
)
# Elevation bands of the main skin grid and their column density: the crown
# is narrow, so it needs fewer columns than the face.
_BANDS = ((-89.0, 30.0, 1.0), (30.0, 48.0, 0.85), (48.0, 62.0, 0.6))


def skin(spacing: float) -> list[Surface]:
    """Skin grids: the main bands with the patch boxes cut out, then the patches."""
    boxes = [(_patch_box(*b), m) for b, m in _PATCHES]
    thetas = tuple(np.linspace(*THETA_RANGE, 25))
    phi = _arc_grid(_arc_profile("phi", -89 * _DEG, 62 * _DEG, thetas, False, False), spacing)
    out = []
    for lo, hi, dens in _BANDS:
        rows = phi[(phi >= lo * _DEG) & (phi < hi * _DEG)]
        phis = tuple(np.linspace(lo, hi, 8) * _DEG)
        theta = _arc_grid(_arc_profile("theta", *THETA_RANGE, phis, False, True), spacing / dens)
        out.append(_skin_grid(theta, rows, [b for b, _ in boxes]))
    for (t0, t1, p0, p1), m in boxes:
        phis = tuple(np.linspace(p0, p1, 12))
        thetas = tuple(np.linspace(t0, t1, 12))
        th = _arc_grid(_arc_profile("theta", t0, t1, phis, True, False), spacing / m)
        ph = _arc_grid(_arc_profile("phi", p0, p1, thetas, True, False), spacing / m)
        out.append(_skin_grid(th, ph, []))
    return out


def _plain_grid(pos: np.ndarray, part: int, r: int, c: int, ref: np.ndarray | None = None):
    keep = np.ones((r, c), dtype=bool)
    nbr = _grid_neighbours(keep, np.ones((r - 1, c), bool), np.ones((r, c - 1), bool))
    ref = pos[:, :2].copy() if ref is None else ref
    n = len(pos)
    return Surface(pos, ref, np.zeros(n), np.full(n, part, np.int8), nbr)


def eyeballs(spacing: float) -> list[Surface]:
    """Both eyeballs: the front of an ellipsoid, gaze straight ahead."""
    ax = A.EYEBALL_AXES
    na = max(int(np.ceil(ax[0] * 2.9 / spacing)), 8)
    nb = max(int(np.ceil(ax[1] * 2.6 / spacing)), 8)
    al, be = np.meshgrid(np.linspace(-85, 85, na) * _DEG, np.linspace(-75, 75, nb) * _DEG)
    al, be = al.ravel(), be.ravel()
    out = []
    for side in (-1.0, 1.0):
        pos = np.stack(
            [
                side * A.EYE_X + ax[0] * np.sin(al) * np.cos(be),
                A.EYE_Y + ax[1] * np.sin(be),
                A.EYEBALL_Z + ax[2] * np.cos(al) * np.cos(be),
            ],
            axis=-1,
        )
        out.append(_plain_grid(pos, EYE, nb, na))
    return out


def mouth_interior(spacing: float) -> list[Surface]:
    """Mouth interior behind the lips.

    The upper part is fixed to the skull: upper teeth and gums, then the dark
    back of the mouth sloping away below them (what an open mouth shows). The
    lower part rides on the jaw: lower teeth and the tongue.
    """
    out = []
    for part, y0, y1, half, dz in (
        (MOUTH_UPPER, -100.0, -57.0, 34.0, 0.0),
        (MOUTH_LOWER, -86.0, -69.5, 30.0, -1.5),
    ):
        nx = max(int(np.ceil(2 * half / spacing)), 8)
        ny = max(int(np.ceil((y1 - y0) / spacing)), 4)
        x, y = np.meshgrid(np.linspace(-half, half, nx), np.linspace(y0, y1, ny))
        x, y = x.ravel(), y.ravel()
        arch = 6.0 + dz - 0.0195 * x * x
        if part == MOUTH_UPPER:
            below = np.clip(-71.0 - y, 0.0, None)
            z = arch - 0.08 * np.abs(np.clip(y, -71.0, None) - A.MOUTH_Y) ** 1.5 - 0.9 * below
        else:
            z = arch - 0.06 * np.abs(y - A.MOUTH_Y) ** 1.6
        out.append(_plain_grid(np.stack([x, y, z], -1), part, ny, nx))
    return out


def neck(spacing: float) -> Surface:
    """A cylinder under the head so the jaw line does not float."""
    th_lo, th_hi = -100 * _DEG, 100 * _DEG
    nt = max(int(np.ceil(53.0 * (th_hi - th_lo) / spacing)), 8)
    ny = max(int(np.ceil(95.0 / spacing)), 8)
    th, y = np.meshgrid(np.linspace(th_lo, th_hi, nt), np.linspace(-150, -55, ny))
    th, y = th.ravel(), y.ravel()
    pos = np.stack([52.0 * np.sin(th), y, -82.0 + 50.0 * np.cos(th)], -1)
    s = _plain_grid(pos, NECK, ny, nt)
    s.theta = th
    return s


def concat(parts: list[Surface]) -> Surface:
    """Join surfaces into one, offsetting neighbour indices."""
    off = np.cumsum([0] + [len(p) for p in parts])
    return Surface(
        np.concatenate([p.pos for p in parts]),
        np.concatenate([p.ref for p in parts]),
        np.concatenate([p.theta for p in parts]),
        np.concatenate([p.part for p in parts]),
        np.concatenate([p.nbr + o for p, o in zip(parts, off[:-1])]),
    )


def build_head(spacing: float) -> Surface:
    """All parts of the head, sampled at about ``spacing`` mm."""
    return concat([*skin(spacing), *eyeballs(spacing), *mouth_interior(spacing), neck(spacing)])
