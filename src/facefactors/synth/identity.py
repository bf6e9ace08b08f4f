"""Identity: a linear shape basis and a colour model, and how identities are drawn.

An identity is one vector ``id_coeffs`` = ``[shape (K_SHAPE), albedo (K_ALBEDO)]``.
The shape part multiplies displacement fields (mm per unit coefficient,
coefficients ~ N(0, 1) clipped at ±2.2): global proportions, nose, eyes,
brows, lips, cheeks, chin, plus a few smooth random residual fields. All
fields are left-right symmetric. The albedo part holds the colour parameters
(skin tone, lips, brows, hair, iris, ...), which :func:`region_colours` turns
into the per-region colours of :mod:`facefactors.synth.albedo`.
"""

from __future__ import annotations

import numpy as np

from facefactors.synth import albedo as AL
from facefactors.synth import anatomy as A
from facefactors.synth import surfaces as S
from facefactors.synth.anatomy import gauss, smooth_sign, smoothstep

NUM_RESIDUAL = 6
SHAPE_NAMES: tuple[str, ...] = (
    "face_width",
    "lower_face_length",
    "forehead_height",
    "jaw_width",
    "cheekbones",
    "cheek_fullness",
    "nose_length",
    "nose_width",
    "nose_protrusion",
    "nose_bridge",
    "nose_tip_up",
    "eye_spacing",
    "eye_height",
    "eye_size",
    "eye_tilt",
    "eye_depth",
    "brow_height",
    "brow_ridge",
    "mouth_width",
    "upper_lip",
    "lower_lip",
    "lip_protrusion",
    "chin_protrusion",
    "chin_length",
    "forehead_slope",
    "cranium_width",
    *(f"residual{i}" for i in range(NUM_RESIDUAL)),
)
ALBEDO_NAMES: tuple[str, ...] = (
    "skin_tone",  # -1 dark .. +1 light
    "skin_warmth",
    "skin_rosiness",
    "lip_redness",
    "lip_darkness",
    "brow_darkness",
    "brow_thickness",
    "hair_darkness",
    "hair_redness",
    "hair_grey",
    "hairline",  # 0 low .. 1 high (receding)
    "iris_hue",  # 0 brown .. 1 blue
    "iris_lightness",
    "stubble",
    "skin_mottle",
)
K_SHAPE = len(SHAPE_NAMES)
K_ALBEDO = len(ALBEDO_NAMES)
ID_COEFF_NAMES: tuple[str, ...] = SHAPE_NAMES + ALBEDO_NAMES


def _eye_region(x, y):
    """1 over both eyes (opening, lids, eyeballs), fading out over ~10 mm."""
    q = ((np.abs(x) - A.EYE_X) / 16.0) ** 2 + ((y - A.EYE_Y) / 12.0) ** 2
    # A wide falloff keeps the skin from folding when several eye fields add up.
    return 1.0 - smoothstep(1.0, 3.5, q)


def shape_fields(surf: S.Surface) -> np.ndarray:
    """Identity displacement fields.

    The eyeballs move rigidly with the skin at the eye centre (plus their own
    scaling for ``eye_size``), so lids and eyeballs never drift apart.

    Returns:
        (n, 3, K_SHAPE) mm per unit coefficient, in :data:`SHAPE_NAMES` order.
    """
    f = _skin_fields(surf)
    eyes = np.nonzero(surf.part == S.EYE)[0]
    if len(eyes):
        side = np.where(surf.ref[eyes, 0] < 0, -1.0, 1.0)
        centre = np.stack([side * A.EYE_X, np.full(len(eyes), A.EYE_Y)], -1)
        theta = np.arcsin(side * A.EYE_X / 75.0)
        proxy = S.Surface(
            surf.pos[eyes], centre, theta, np.full(len(eyes), S.SKIN_UPPER, np.int8), surf.nbr[eyes]
        )
        rigid = _skin_fields(proxy)
        k = SHAPE_NAMES.index("eye_size")
        rigid[:, :, k] = f[eyes, :, k]  # the eyeball's own scaling
        f[eyes] = rigid
    return f


def _skin_fields(surf: S.Surface) -> np.ndarray:
    """The fields evaluated as defined per part (see :func:`shape_fields`)."""
    n = len(surf)
    x, y = surf.ref[:, 0], surf.ref[:, 1]
    ax, sx = np.abs(x), smooth_sign(x)
    part = surf.part
    skin = ((part == S.SKIN_UPPER) | (part == S.SKIN_LOWER)).astype(float)
    face = (part != S.NECK).astype(float)
    front = (
        np.clip(np.cos(surf.theta), 0.0, 1.0) ** 2 * skin
        + (part == S.MOUTH_UPPER)
        + (part == S.MOUTH_LOWER)
    )
    eye = _eye_region(x, y) * face
    is_eyeball = (part == S.EYE).astype(float)
    side = np.where(x < 0, -1.0, 1.0)
    centre = np.stack([side * A.EYE_X, np.full(n, A.EYE_Y), np.full(n, A.EYEBALL_Z)], -1)
    d_up = y - A.eye_margins(x, side)[1]
    # Upper lid only (points inside the opening are not rendered; the lower lid
    # stays), fading out at the corners so the lid line does not split there.
    t = np.abs(ax - A.EYE_X) / A.EYE_HALF_WIDTH
    taper = 1.0 - smoothstep(0.6, 1.2, t)
    wu = (1.0 - smoothstep(0.0, 9.0, d_up)) * (d_up > -1.0) * taper * eye * skin
    nose = A._nose(x, y)
    f = np.zeros((n, 3, K_SHAPE))

    def put(name, dx=0.0, dy=0.0, dz=0.0):
        f[:, :, SHAPE_NAMES.index(name)] = np.stack(np.broadcast_arrays(dx, dy, dz), -1)

    put("face_width", dx=0.05 * x * (1.0 - 0.7 * eye) * face)
    put("lower_face_length", dy=0.07 * np.minimum(y + 10.0, 0.0) * face)
    put("forehead_height", dy=0.07 * np.maximum(y - 15.0, 0.0) * face)
    put("jaw_width", dx=0.07 * x * smoothstep(-40.0, -85.0, y) * skin)
    cb = gauss(ax, y, 44, -20, 13, 11) * front
    put("cheekbones", dx=1.5 * sx * cb, dz=3.0 * cb)
    cf = gauss(ax, y, 45, -55, 15, 15) * front
    put("cheek_fullness", dx=3.0 * sx * cf, dz=2.0 * cf)
    nose_w = gauss(x, y, 0, -25, 20, 30) * front
    put(
        "nose_length",
        dy=-5.0 * smoothstep(12.0, -37.0, y) * (1.0 - smoothstep(-45.0, -62.0, y)) * nose_w,
    )
    put("nose_width", dx=0.16 * x * gauss(x, y, 0, -38, 16, 9) * front)
    put("nose_protrusion", dz=0.22 * nose * front)
    put("nose_bridge", dz=2.5 * gauss(x, y, 0, -12, 6, 11) * front)
    tip = gauss(x, y, 0, -41, 9, 5) * front
    put("nose_tip_up", dy=2.5 * tip, dz=-1.0 * tip)
    put("eye_spacing", dx=1.5 * sx * eye)
    put("eye_height", dy=1.5 * eye)
    rel = surf.pos - centre
    put(
        "eye_size",
        dx=0.05 * rel[:, 0] * is_eyeball,
        dy=0.05 * rel[:, 1] * is_eyeball + 0.7 * wu,
        dz=0.05 * rel[:, 2] * is_eyeball,
    )
    put("eye_tilt", dy=1.5 * np.clip((ax - A.EYE_X) / A.EYE_HALF_WIDTH, -1.5, 1.5) * eye)
    put("eye_depth", dz=-2.0 * eye)
    put("brow_height", dy=3.0 * gauss(ax, y, 30, 15, 18, 5) * smoothstep(4.0, 9.0, y) * front)
    put("brow_ridge", dz=2.5 * gauss(ax, y, 27, 13, 15, 5) * front)
    mouth = gauss(x, y, 0, -70, 28, 10) * front
    put("mouth_width", dx=0.09 * x * mouth)
    ul = gauss(x, y, 0, -62.5, 16, 3.5) * front * (part == S.SKIN_UPPER)
    put("upper_lip", dy=1.8 * ul, dz=0.6 * ul)
    ll = gauss(x, y, 0, -79, 14, 4) * front * (part == S.SKIN_LOWER)
    put("lower_lip", dy=-2.0 * ll, dz=0.8 * ll)
    put("lip_protrusion", dz=2.5 * gauss(x, y, 0, -70, 18, 9) * front)
    put("chin_protrusion", dz=4.0 * gauss(x, y, 0, -103, 16, 10) * front)
    put("chin_length", dy=-4.0 * smoothstep(-80.0, -105.0, y) * gauss(x, 0, 0, 0, 35, 1) * skin)
    put("forehead_slope", dz=-0.1 * np.maximum(y - 25.0, 0.0) * front)
    put("cranium_width", dx=0.05 * x * smoothstep(20.0, 60.0, y) * skin)
    rng = np.random.default_rng(1234)  # fixed: the residual fields are part of the model
    for i in range(NUM_RESIDUAL):
        disp = np.zeros((n, 3))
        for _ in range(4):
            cx, cy = rng.uniform(0, 50), rng.uniform(-110, 60)
            sg = rng.uniform(8, 20)
            bump = (gauss(ax, y, cx, cy, sg, sg) if cx > 6 else gauss(x, y, 0, cy, sg, sg)) * front
            vec = rng.normal(size=3) * [0.6, 0.6, 1.6]
            disp += bump[:, None] * np.stack(
                [sx * vec[0], np.full(n, vec[1]), np.full(n, vec[2])], -1
            )
        f[:, :, SHAPE_NAMES.index(f"residual{i}")] = disp
    return f


def sample_identity(rng: np.random.Generator) -> np.ndarray:
    """Draw one identity's coefficients.

    Returns:
        (K_SHAPE + K_ALBEDO,) float64, shape part ~ N(0,1) clipped at ±2.2 and
        albedo part in the ranges documented in :data:`ALBEDO_NAMES`.
    """
    shape = np.clip(rng.normal(size=K_SHAPE), -2.2, 2.2)
    alb = np.array(
        [
            rng.uniform(-1.0, 1.0),
            np.clip(rng.normal(), -2.0, 2.0),
            rng.uniform(0.0, 1.0),
            rng.uniform(0.0, 1.0),
            rng.uniform(0.0, 1.0),
            rng.uniform(0.45, 0.95),
            rng.uniform(-1.0, 1.0),
            rng.uniform(0.0, 1.0),
            rng.uniform(0.0, 1.0) * (rng.uniform() < 0.3),
            rng.uniform(0.0, 1.0) ** 3,
            rng.uniform(0.0, 1.0),
            rng.uniform(0.0, 1.0),
            rng.uniform(0.0, 1.0),
            rng.uniform(0.2, 1.0) * (rng.uniform() < 0.35),
            rng.uniform(0.0, 1.0),
        ]
    )
    return np.concatenate([shape, alb])


def mean_identity() -> np.ndarray:
    """The average face: zero shape coefficients and mid-range colours."""
    alb = [0.2, 0.0, 0.3, 0.5, 0.3, 0.7, 0.0, 0.6, 0.0, 0.0, 0.5, 0.2, 0.5, 0.0, 0.5]
    return np.concatenate([np.zeros(K_SHAPE), np.asarray(alb, dtype=np.float64)])


def _lerp(a, b, t):
    return np.asarray(a) + (np.asarray(b) - np.asarray(a)) * t


def region_colours(alb: np.ndarray) -> np.ndarray:
    """Colours of every albedo region for one identity.

    Args:
        alb: (K_ALBEDO,) albedo parameters (:data:`ALBEDO_NAMES`).

    Returns:
        (NUM_REGIONS, 3) linear RGB albedo (layered regions) or deltas (additive).
    """
    p = dict(zip(ALBEDO_NAMES, alb))
    t = 0.5 * (p["skin_tone"] + 1.0)
    skin = _lerp([0.31, 0.19, 0.13], [0.86, 0.68, 0.57], t**0.9)
    skin = np.clip(skin + np.array([0.025, 0.004, -0.03]) * p["skin_warmth"], 0.03, 0.95)
    hair = _lerp([0.50, 0.36, 0.22], [0.045, 0.035, 0.03], p["hair_darkness"] ** 0.6)
    hair = hair + np.array([0.2, 0.05, -0.03]) * p["hair_redness"] * (1.0 - p["hair_darkness"])
    hair = np.clip(_lerp(hair, [0.62, 0.60, 0.58], p["hair_grey"]), 0.02, 0.9)
    lip = skin * (0.78 - 0.18 * p["lip_darkness"]) + np.array([0.10, -0.03, -0.01]) * (
        0.4 + p["lip_redness"]
    )
    brow = _lerp(skin, hair * 0.8, p["brow_darkness"])
    iris = np.array(
        [
            np.interp(p["iris_hue"], [0.0, 0.35, 0.6, 1.0], c)
            for c in ([0.28, 0.38, 0.30, 0.30], [0.15, 0.30, 0.40, 0.45], [0.07, 0.12, 0.28, 0.62])
        ]
    ) * (0.75 + 0.5 * p["iris_lightness"])
    hairline = AL.HAIRLINE_RANGE[0] + p["hairline"] * (AL.HAIRLINE_RANGE[1] - AL.HAIRLINE_RANGE[0])
    levels = np.linspace(AL.HAIRLINE_RANGE[1], AL.HAIRLINE_RANGE[0], 7)
    c = {
        "skin": skin,
        "stubble": _lerp(skin, hair * 0.7, 0.55 * p["stubble"]),
        "lips": np.clip(lip, 0.02, 0.95),
        "lip_line": lip * 0.45,
        "nostrils": skin * 0.22,
        "lashes": hair * 0.35 + 0.01,
        "lower_lashes": _lerp(skin, hair * 0.5, 0.6),
        "brow_core": brow,
        "brow_ring": _lerp(skin, brow, np.clip(0.5 + 0.5 * p["brow_thickness"], 0, 1)),
        "hair_core": hair,
        "sclera": np.array([0.86, 0.83, 0.79]),
        "caruncle": np.array([0.80, 0.52, 0.50]),
        "iris": iris,
        "iris_inner": iris * 0.72,
        "limbus": iris * 0.4,
        "pupil": np.array([0.02, 0.02, 0.02]),
        "catchlight": np.array([1.0, 1.0, 1.0]),
        "cavity": np.array([0.10, 0.035, 0.035]),
        "gums": np.array([0.72, 0.36, 0.36]),
        "tongue": np.array([0.55, 0.22, 0.22]),
        "teeth": np.array([0.93, 0.90, 0.82]),
        "teeth_gaps": np.array([0.45, 0.40, 0.35]),
        "blush": np.array([0.09, -0.03, -0.02]) * p["skin_rosiness"] * (0.5 + 0.5 * t),
        "periorbital": -0.07 * skin,
        "crease": -0.12 * skin,
        "mottle": 0.035 * p["skin_mottle"] * skin,
        "neck_shade": -0.12 * skin,
        "hair_sheen": 0.04 * hair + 0.01,
    }
    for i in range(6):
        cover = np.clip((levels[i] - hairline) / (levels[i] - levels[i + 1]), 0.0, 1.0)
        c[f"hair_band{i}"] = _lerp(skin, hair, cover)
    return np.stack([np.asarray(c[name], dtype=np.float64) for name in AL.REGION_NAMES])
