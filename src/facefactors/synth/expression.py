"""FACS-like action-unit (AU) blendshapes and the basic-expression prototypes.

Every AU is a smooth displacement field (mm at intensity 1) on the mean head,
split into a subject-right and a subject-left half so that unilateral
expressions (contempt) exist. The expression coefficient vector therefore has
``2 * len(AU_IDS)`` entries, ordered ``[AU1 right, AU1 left, AU2 right, ...]``.
The mouth line and the eye openings are cuts in the skin, so lips part and
lids close over the eyeball instead of stretching a membrane.
"""

from __future__ import annotations

import numpy as np

from facefactors.synth import anatomy as A
from facefactors.synth import surfaces as S
from facefactors.synth.anatomy import gauss, smooth_sign, smoothstep

AU_IDS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 25, 26, 43)
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    25: "lips part",
    26: "jaw drop",
    43: "eyes closed",
}
NUM_AUS = len(AU_IDS)
SIDES = ("right", "left")  # the subject's right is image-left on a frontal face
EXP_COEFF_NAMES: tuple[str, ...] = tuple(f"AU{a}{s[0].upper()}" for a in AU_IDS for s in SIDES)

# Canonical class -> {AU: relative intensity}. Contempt is unilateral: the
# sampler activates it on one randomly chosen side only.
AU_PROTOTYPES: dict[str, dict[int, float]] = {
    "neutral": {},
    "happy": {6: 1.0, 12: 1.0},
    "sad": {1: 1.0, 4: 1.0, 15: 1.0},
    "surprise": {1: 1.0, 2: 1.0, 5: 1.0, 26: 1.0},
    "fear": {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 7: 1.0, 20: 1.0, 26: 1.0},
    "disgust": {9: 1.0, 15: 1.0, 16: 1.0},
    "anger": {4: 1.0, 5: 1.0, 7: 1.0, 23: 1.0},
    "contempt": {12: 1.0, 14: 1.0},
}
UNILATERAL_CLASSES: frozenset[str] = frozenset({"contempt"})


def au_index(au: int) -> int:
    """Position of an AU number in :data:`AU_IDS`."""
    return AU_IDS.index(au)


def _eye_frame(x, y):
    """Per-point eye coordinates: corner parameter t, margins and a taper past the corners."""
    side = np.where(x < 0, -1.0, 1.0)
    t_raw = (side * x - A.EYE_X) / A.EYE_HALF_WIDTH
    _, up, lo = A.eye_margins(x, side)
    taper = 1.0 - smoothstep(0.85, 1.35, np.abs(t_raw))
    return up, lo, taper


def _lid_weights(x, y, upper_falloff=10.0):
    """(upper lid weight, lower lid weight, opening height) for skin points."""
    up, lo, taper = _eye_frame(x, y)
    d_up = y - up
    d_lo = lo - y
    # Points inside the opening were removed; the margin rows have d ~ 0.
    wu = (1.0 - smoothstep(0.0, upper_falloff, d_up)) * (d_up > -1.0) * taper
    wl = (1.0 - smoothstep(0.0, 7.0, d_lo)) * (d_lo > -1.0) * taper
    return wu, wl, np.maximum(up - lo, 0.0)


def _vec(dx=0.0, dy=0.0, dz=0.0, n=None):
    return np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1).reshape(n, 3)


def au_fields(surf: S.Surface) -> np.ndarray:
    """Displacement fields of every AU, split by side.

    Args:
        surf: the sampled head.

    Returns:
        (n, 3, 2 * NUM_AUS) displacements in mm per unit coefficient, in the
        order of :data:`EXP_COEFF_NAMES`.
    """
    n = len(surf)
    x, y = surf.ref[:, 0], surf.ref[:, 1]
    ax, sx = np.abs(x), smooth_sign(x)
    part = surf.part
    skin = (part == S.SKIN_UPPER) | (part == S.SKIN_LOWER)
    upper = part == S.SKIN_UPPER
    lower = part == S.SKIN_LOWER
    front = np.clip(np.cos(surf.theta), 0.0, 1.0) ** 2 * skin
    # 0 between the mouth corners, 1 beyond: fields of one lip only are shared
    # by both sheets outside the mouth, so the skin stays continuous there.
    g = smoothstep(0.72, 1.06, ax / A.MOUTH_CORNER_X)
    on_upper = upper + lower * g
    on_lower = lower + upper * g
    wu, wl, opening = _lid_weights(x, y)
    above_eyes = smoothstep(3.0, 10.0, y)
    fields = {}

    fields[1] = _vec(dy=5.0 * gauss(ax, y, 14, 17, 9, 9) * above_eyes * front, n=n)
    fields[2] = _vec(dy=5.0 * gauss(ax, y, 38, 17, 11, 9) * above_eyes * front, n=n)
    brow = gauss(ax, y, 22, 14, 14, 7) * smoothstep(-3.0, 7.0, y) * front
    fields[4] = _vec(
        dx=-sx * 3.5 * gauss(ax, y, 16, 14, 11, 8) * front,
        dy=-5.5 * brow,
        dz=1.5 * gauss(x, y, 0, 12, 8, 6) * front,
        n=n,
    )
    fields[5] = _vec(dy=2.8 * wu * skin - 0.4 * wl * skin, n=n)
    cheek = gauss(ax, y, 36, -22, 13, 11) * front
    fields[6] = _vec(dy=3.5 * cheek + 1.8 * wl * skin, dz=1.5 * cheek, n=n)
    fields[7] = _vec(dy=2.8 * wl * skin - 1.6 * wu * skin, n=n)
    fields[9] = _vec(
        dy=(
            3.0 * gauss(ax, y, 9, -36, 8, 9)
            + 1.5 * gauss(x, y, 0, -62, 12, 5) * on_upper
            - 2.0 * gauss(ax, y, 12, 12, 8, 6)
        )
        * front,
        dz=1.0 * gauss(x, y, 0, 2, 7, 6) * front,
        n=n,
    )
    fields[10] = _vec(dy=3.5 * gauss(ax, y, 9, -64, 9, 6) * on_upper * front, n=n)
    corner = gauss(ax, y, 26, -69, 9, 8) * front
    bulge = gauss(ax, y, 36, -52, 10, 10) * front
    part_lips = (
        1.2 * gauss(ax, y, 12, -68, 8, 3) * upper - 1.0 * gauss(ax, y, 12, -72, 8, 3) * lower
    ) * (1.0 - g)
    fields[12] = _vec(
        dx=sx * 5.0 * corner,
        dy=6.5 * corner + 2.0 * bulge + 1.5 * part_lips * front,
        dz=-2.5 * corner + 2.5 * bulge,
        n=n,
    )
    dimple = gauss(ax, y, 25, -70, 6, 6) * front
    fields[14] = _vec(dx=-sx * 2.0 * dimple, dy=1.2 * dimple, dz=-3.5 * dimple, n=n)
    dep = gauss(ax, y, 25, -71, 8, 8) * front
    fields[15] = _vec(dx=sx * 0.8 * dep, dy=-5.5 * dep, n=n)
    lip_lo = gauss(ax, y, 8, -76, 10, 5) * on_lower * front
    fields[16] = _vec(dy=-3.5 * lip_lo, dz=1.0 * lip_lo, n=n)
    chin = gauss(x, y, 0, -98, 14, 10) * on_lower * front
    pout = gauss(x, y, 0, -76, 14, 4) * on_lower * front
    fields[17] = _vec(dy=3.0 * chin + 1.5 * pout, dz=1.5 * chin + 2.0 * pout, n=n)
    stretch = gauss(ax, y, 24, -70, 10, 9) * front
    fields[20] = _vec(dx=sx * 4.0 * stretch, dy=-1.0 * stretch, dz=-1.5 * stretch, n=n)
    tight = gauss(x, y, 0, -70, 20, 8) * front
    fields[23] = _vec(
        dx=-0.08 * x * tight, dy=-0.35 * (y - A.MOUTH_Y) * tight, dz=-1.5 * tight, n=n
    )
    lips = 1.0 - g
    fields[25] = _vec(
        dy=(
            1.2 * gauss(x, y, 0, -68, 18, 4) * upper * lips
            - 3.5 * gauss(x, y, 0, -74, 20, 7) * lower * lips
        )
        * front
        - 1.0 * (part == S.MOUTH_LOWER),
        n=n,
    )
    # Jaw drop: the lower face, lower teeth and tongue move down and back. Near
    # the mouth line the lower lip follows an arch (0 at the corners), so the
    # opening is oval; the upper sheet stays put.
    lateral = 1.0 - smoothstep(50.0, 72.0, ax)
    arch = np.sqrt(np.clip(1.0 - (x / 27.0) ** 2, 0.0, 1.0))
    near = smoothstep(-88.0, -74.0, y)
    jaw = lateral * front * lower * (near * arch + (1.0 - near))
    jaw = jaw + (part == S.MOUTH_LOWER)
    fields[26] = _vec(dy=-11.0 * jaw, dz=-2.5 * jaw, n=n)
    wc = _lid_weights(x, y, upper_falloff=15.0)[0]  # closing spreads the stretch wider
    # Overshoot a little so lids close whatever the identity's eye size.
    close = (opening + 2.0) * wc * skin
    fields[43] = _vec(dy=-close + 0.6 * wl * skin, dz=0.9 * wc * skin, n=n)

    right = 1.0 - 1.0 / (1.0 + np.exp(-x / 1.5))
    out = np.zeros((n, 3, 2 * NUM_AUS))
    for i, au in enumerate(AU_IDS):
        f = fields[au]
        out[:, :, 2 * i] = f * right[:, None]
        out[:, :, 2 * i + 1] = f * (1.0 - right[:, None])
    return out


def _lines(v, period):
    return 0.5 + 0.5 * np.cos(2.0 * np.pi * v / period)


def wrinkle_fields(surf: S.Surface) -> np.ndarray:
    """Albedo darkening of each expression coefficient (wrinkles and folds).

    Returns:
        (n, 2 * NUM_AUS) fraction of albedo removed per unit coefficient.
    """
    n = len(surf)
    x, y = surf.ref[:, 0], surf.ref[:, 1]
    ax = np.abs(x)
    skin = ((surf.part == S.SKIN_UPPER) | (surf.part == S.SKIN_LOWER)) * np.clip(
        np.cos(surf.theta), 0, 1
    )
    w = {au: np.zeros(n) for au in AU_IDS}
    forehead = _lines(y - 30.0, 8.0) ** 3
    w[1] = 0.22 * forehead * gauss(x, y, 0, 36, 16, 10)
    w[2] = 0.18 * forehead * gauss(ax, y, 30, 38, 14, 9)
    w[4] = 0.35 * gauss(ax, y, 4.5, 12, 1.3, 5) + 0.1 * gauss(x, y, 0, 12, 8, 5)
    w[6] = 0.22 * _lines(y - 1.0, 4.5) ** 2 * gauss(ax, y, 50, 0, 3.5, 6) + 0.12 * gauss(
        ax, y, 33, -10, 8, 2.5
    )
    w[9] = 0.3 * _lines(y - 4.0, 3.5) ** 2 * gauss(x, y, 0, 4, 7, 4) + 0.15 * gauss(
        ax, y, 15, -44, 3, 4
    )
    # Nasolabial fold: a soft band from the nose wing past the mouth corner.
    fold = _segment_band(ax, y, (17.0, -42.0), (31.0, -76.0), 1.8)
    w[10] = 0.2 * fold
    w[12] = 0.3 * fold
    w[14] = 0.25 * gauss(ax, y, 30, -71, 2.0, 2.5)
    w[17] = 0.12 * gauss(x, y, 0, -101, 9, 6)
    w[20] = 0.1 * gauss(ax, y, 33, -80, 4, 6)
    right = 1.0 - 1.0 / (1.0 + np.exp(-x / 1.5))
    out = np.zeros((n, 2 * NUM_AUS))
    for i, au in enumerate(AU_IDS):
        out[:, 2 * i] = w[au] * skin * right
        out[:, 2 * i + 1] = w[au] * skin * (1.0 - right)
    return out


def _segment_band(x, y, p0, p1, width):
    """Soft band of half-width ``width`` (mm) around the segment p0-p1."""
    p0, p1 = np.asarray(p0), np.asarray(p1)
    d = p1 - p0
    t = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / (d @ d), 0.0, 1.0)
    dist = np.hypot(x - (p0[0] + t * d[0]), y - (p0[1] + t * d[1]))
    fade = np.sin(np.pi * np.clip(t, 0.02, 0.98)) ** 0.5
    return np.exp(-0.5 * (dist / width) ** 2) * fade
