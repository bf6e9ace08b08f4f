"""Albedo: fixed region weights on the surface samples times per-identity colours.

The albedo of sample v is ``sum_r W[v, r] * C[r]`` where ``W`` (n, R) is a
fixed weight table (skin, lips, brows, hair, iris, teeth, ...) computed once
from the reference coordinates, and ``C`` (R, 3) holds the colours of one
identity (:func:`region_colours`). Because the texture is attached to the
samples, anything an AU moves (brows, lids, lips) moves in the albedo too.
Parameters that change a region's *extent* (brow thickness, hairline) select
between fixed bands, so the albedo stays linear in the colours.
"""

from __future__ import annotations

import numpy as np

from facefactors.synth import anatomy as A
from facefactors.synth import surfaces as S
from facefactors.synth.anatomy import gauss, smoothstep

# Regions composited over the skin in this order (later ones cover earlier ones).
LAYERED = (
    "stubble",
    "lips",
    "lip_line",
    "nostrils",
    "lashes",
    "lower_lashes",
    "brow_core",
    "brow_ring",
    *(f"hair_band{i}" for i in range(6)),
    "hair_core",
    "sclera",
    "caruncle",
    "iris",
    "iris_inner",
    "limbus",
    "pupil",
    "catchlight",
    "cavity",
    "gums",
    "tongue",
    "teeth",
    "teeth_gaps",
)
# Regions added on top (their colours are signed deltas).
ADDITIVE = ("blush", "periorbital", "crease", "mottle", "neck_shade", "hair_sheen")
REGION_NAMES: tuple[str, ...] = ("skin", *LAYERED, *ADDITIVE)
NUM_REGIONS = len(REGION_NAMES)
HAIRLINE_RANGE = (50.0, 74.0)  # mm above the eye line, lowest to highest


def _soft_band(v, lo, hi, soft):
    return smoothstep(lo - soft, lo + soft, v) * (1.0 - smoothstep(hi - soft, hi + soft, v))


def _noise3(pos: np.ndarray, wavelengths: tuple[float, ...], seed: int) -> np.ndarray:
    """Smooth deterministic noise in [-1, 1] from a fixed sum of 3D sinusoids."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(pos))
    for wl in wavelengths:
        for _ in range(4):
            k = rng.normal(size=3)
            k *= 2.0 * np.pi / (wl * np.linalg.norm(k))
            out += np.sin(pos @ k + rng.uniform(0, 2 * np.pi))
    return out / (0.5 * np.sqrt(2.0 * len(wavelengths) * 4))


def _masks(surf: S.Surface) -> dict[str, np.ndarray]:
    x, y = surf.ref[:, 0], surf.ref[:, 1]
    ax = np.abs(x)
    part = surf.part
    skin = ((part == S.SKIN_UPPER) | (part == S.SKIN_LOWER)).astype(float)
    upper, lower = (part == S.SKIN_UPPER), (part == S.SKIN_LOWER)
    front = np.clip(np.cos(surf.theta), 0.0, 1.0) * skin
    m: dict[str, np.ndarray] = {}

    jaw = smoothstep(-52.0, -62.0, y) * (1.0 - smoothstep(60.0, 72.0, ax))
    moustache = gauss(x, y, 0, -60, 22, 4) * (1.0 - smoothstep(24, 30, ax))
    m["stubble"] = 0.8 * np.clip(jaw + moustache, 0, 1) * skin * (np.cos(surf.theta) > 0.1)

    # Lips: vermilion between the mouth line and the lip borders.
    u = np.clip(ax / 25.0, 0, 1)
    y_ub = (
        A.MOUTH_Y
        + 7.5 * (1 - u**2) ** 0.6
        - 1.3 * gauss(x, 0, 0, 0, 2.6, 1)
        + 0.5 * gauss(ax, 0, 5, 0, 2.5, 1)
    )
    y_lb = A.MOUTH_Y - 9.5 * (1 - np.clip(ax / 24.0, 0, 1) ** 2) ** 0.55
    ends = 1.0 - smoothstep(22.0, 26.0, ax)
    m["lips"] = ends * (
        upper * (1.0 - smoothstep(y_ub - 0.6, y_ub + 0.6, y))
        + lower * smoothstep(y_lb - 0.6, y_lb + 0.6, y)
    )
    m["lip_line"] = (
        0.6 * (1.0 - smoothstep(20.0, 25.5, ax)) * np.exp(-0.5 * ((y - A.MOUTH_Y) / 0.9) ** 2)
    )
    m["lip_line"] *= skin
    m["nostrils"] = 0.9 * np.exp(-0.5 * (((ax - 6.3) / 2.6) ** 2 + ((y + 44.2) / 1.5) ** 2) ** 2)
    m["nostrils"] *= skin

    side = np.where(x < 0, -1.0, 1.0)
    t_raw = (side * x - A.EYE_X) / A.EYE_HALF_WIDTH
    _, up, lo = A.eye_margins(x, side)
    in_eye = (np.abs(t_raw) < 1.08) * skin
    m["lashes"] = 0.92 * in_eye * _soft_band(y - up, -1.0, 1.1 + 0.5 * (1 - t_raw**2), 0.35)
    m["lower_lashes"] = 0.3 * in_eye * _soft_band(lo - y, -0.5, 1.8, 0.7)

    # Brows: an arch with a thin core and an outer ring used by thick brows.
    ub = np.clip((ax - 11.0) / 39.0, 0, 1)
    y_b = 13.5 + 4.0 * np.sin(np.pi * ub**0.85) - 1.5 * ub
    half = 2.7 * (1.0 - 0.6 * ub)
    ends = smoothstep(10.0, 13.0, ax) * (1.0 - smoothstep(47.0, 52.0, ax)) * front
    d = np.abs(y - y_b)
    core = 1.0 - smoothstep(0.7 * half, 1.05 * half, d)
    ring = 1.0 - smoothstep(1.3 * half, 1.8 * half, d)
    m["brow_core"] = 0.95 * core * ends
    m["brow_ring"] = 0.9 * np.clip(ring - core, 0, 1) * ends

    lo_h, hi_h = HAIRLINE_RANGE
    levels = np.linspace(hi_h, lo_h, 7)
    for i in range(6):
        m[f"hair_band{i}"] = _hair_between(surf, levels[i + 1], levels[i]) * skin
    m["hair_core"] = A.hair_weight(surf.theta, x, y, hi_h) * skin

    eye = (part == S.EYE).astype(float)
    dx, dy = x - side * A.EYE_X, y - A.EYE_Y
    r = np.hypot(dx, dy)
    m["sclera"] = eye
    m["caruncle"] = eye * smoothstep(10.0, 13.0, -side * dx) * 0.8
    m["iris"] = eye * (1.0 - smoothstep(A.IRIS_RADIUS - 0.35, A.IRIS_RADIUS + 0.35, r))
    m["iris_inner"] = eye * (1.0 - smoothstep(2.4, 3.6, r)) * 0.7
    m["limbus"] = eye * _soft_band(r, A.IRIS_RADIUS - 1.0, A.IRIS_RADIUS + 0.1, 0.35) * 0.8
    m["pupil"] = eye * (1.0 - smoothstep(A.PUPIL_RADIUS - 0.3, A.PUPIL_RADIUS + 0.3, r))
    m["catchlight"] = eye * (1.0 - smoothstep(0.5, 1.0, np.hypot(dx + 1.4, dy - 1.5))) * 0.9

    mu, ml = (part == S.MOUTH_UPPER), (part == S.MOUTH_LOWER)
    mouth = (mu | ml).astype(float)
    m["cavity"] = mouth
    m["gums"] = mu * smoothstep(-64.0, -62.5, y) * (1.0 - smoothstep(20, 26, ax))
    m["tongue"] = ml * (1.0 - smoothstep(-80.0, -78.0, y)) * (1.0 - smoothstep(16, 24, ax))
    upper_teeth = mu * _soft_band(y, -73.0, -63.3, 0.3) * (1.0 - smoothstep(17.0, 20.0, ax))
    lower_teeth = ml * _soft_band(y, -78.0, -71.0, 0.3) * (1.0 - smoothstep(14.0, 17.0, ax))
    m["teeth"] = upper_teeth + lower_teeth
    gaps = np.zeros_like(x)
    for gx in (0.0, 4.3, 8.3, 11.8, 15.0):
        gaps = np.maximum(gaps, np.exp(-0.5 * ((ax - gx) / 0.45) ** 2))
    m["teeth_gaps"] = 0.5 * gaps * m["teeth"]

    m["blush"] = gauss(ax, y, 40, -30, 12, 10) * front + 0.6 * gauss(x, y, 0, -34, 6, 6) * front
    m["periorbital"] = (gauss(ax, y, 30, -7, 10, 3.5) + 0.5 * gauss(ax, y, 21, 4, 4, 6)) * front
    m["crease"] = in_eye * np.exp(-0.5 * ((y - up - 6.5) / 1.2) ** 2) * (1 - t_raw**2).clip(0, 1)
    # Noise is evaluated at |x| so that faces stay left-right symmetric.
    sym = surf.pos * [1.0, 1.0, 1.0]
    sym[:, 0] = np.abs(sym[:, 0])
    m["mottle"] = _noise3(sym, (7.0, 13.0, 25.0), seed=11) * skin
    m["neck_shade"] = (part == S.NECK) * (1.0 - 0.4 * smoothstep(-130, -60, y))
    sheen = _noise3(sym, (14.0, 30.0), seed=12)
    m["hair_sheen"] = sheen * A.hair_weight(surf.theta, x, y, 62.0) * skin
    return m


def _hair_between(surf: S.Surface, lo: float, hi: float) -> np.ndarray:
    """Hair present with a hairline at ``lo`` but not at ``hi`` (a band above the forehead)."""
    x, y = surf.ref[:, 0], surf.ref[:, 1]
    return np.clip(
        A.hair_weight(surf.theta, x, y, lo) - A.hair_weight(surf.theta, x, y, hi), 0.0, 1.0
    )


def jittered(surf: S.Surface, radius: float) -> list[S.Surface]:
    """Copies of ``surf`` with reference coordinates shifted on a 3x3 grid of ``radius``.

    Averaging a texture over them box-filters it at the sampling scale, so thin
    features (lashes, lip line, wrinkles) do not alias into dotted lines.
    """
    out = []
    for dx in (-radius, 0.0, radius):
        for dy in (-radius, 0.0, radius):
            ref = surf.ref + np.array([dx, dy])
            out.append(S.Surface(surf.pos, ref, surf.theta, surf.part, surf.nbr))
    return out


def region_weights(surf: S.Surface, blur: float = 0.0) -> np.ndarray:
    """The (n, R) weight table, layered regions composited in order over the skin.

    Args:
        surf: the samples.
        blur: texture prefilter radius in mm (about a third of the sample spacing).
    """
    copies = jittered(surf, blur) if blur > 0 else [surf]
    masks = [_masks(c) for c in copies]
    m = {k: np.mean([mm[k] for mm in masks], axis=0) for k in masks[0]}
    n = len(surf)
    w = np.zeros((n, NUM_REGIONS))
    w[:, 0] = 1.0
    for name in LAYERED:
        a = np.clip(m[name], 0.0, 1.0)
        w *= (1.0 - a)[:, None]
        w[:, REGION_NAMES.index(name)] = a
    for name in ADDITIVE:
        w[:, REGION_NAMES.index(name)] = m[name]
    return w
