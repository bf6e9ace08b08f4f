"""The mean head: a smooth parametric surface plus facial features, in millimetres.

Head frame: x toward the subject's left (image right for a frontal face), y up,
z toward the viewer. The eye centres sit at (±31, 0.5), the nose tip at
(0, -37), the mouth line at y = -70 with corners at x = ±25.

The skin is parametrised by azimuth ``theta`` (0 = front, positive toward +x)
and elevation ``phi`` (radians). Every quantity a later field needs is a pure
function of the *reference coordinates* (x, y) of the base surface, so the
same surface can be sampled on grids of any density.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

# Landmark geometry of the mean face (mm).
EYE_X = 31.0
EYE_Y = 0.5
EYE_HALF_WIDTH = 14.0
MOUTH_Y = -70.0
MOUTH_CORNER_X = 25.0
HEAD_CENTRE_Z = -85.0
# Rotation pivot for head pose, roughly at the top of the neck.
PIVOT = np.array([0.0, -25.0, -80.0])
# Eyeball ellipsoid (semi-axes x, y, z) and its centre depth.
EYEBALL_AXES = np.array([16.0, 13.0, 12.0])
EYEBALL_Z = -15.5
LID_THICKNESS = 1.8
IRIS_RADIUS = 5.6
PUPIL_RADIUS = 2.1

_DEG = np.pi / 180.0


def _pchip(xs, ys):
    return PchipInterpolator(np.asarray(xs, float), np.asarray(ys, float), extrapolate=True)


# Profiles of the base surface as functions of elevation (degrees).
_WIDTH_LOW = _pchip(
    [-90, -85, -80, -70, -60, -50, -40, -30, -20, -10, 0],
    [2, 38, 50, 58, 62, 65, 67, 69, 71, 73, 75],
)
_FRONT_LOW = _pchip(
    [-90, -85, -80, -70, -60, -50, -40, -30, -15, 0],
    [2, 22, 45, 72, 84, 87, 89, 90, 89, 87],
)
# Lowest point of the head (chin / jaw line / nape) as a function of |azimuth|.
_Y_LOW = _pchip([0, 30, 45, 60, 75, 90, 120, 180], [118, 117, 109, 96, 80, 64, 58, 60])


def gauss(x, y, cx, cy, sx, sy):
    """Unnormalised 2D Gaussian bump with peak 1 at (cx, cy)."""
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def smooth_sign(x, width=4.0):
    """Odd, continuous stand-in for sign(x): lateral fields must not tear the midline."""
    return np.tanh(np.asarray(x) / width)


def smoothstep(e0, e1, x):
    """Hermite ramp from 0 at ``e0`` to 1 at ``e1``."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def head_base(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Base head surface (no facial features).

    Args:
        theta: (n,) azimuth in radians, 0 at the front.
        phi: (n,) elevation in radians.

    Returns:
        (n, 3) points in the head frame (mm).
    """
    deg = phi / _DEG
    up = phi >= 0
    c = np.cos(np.clip(phi, -np.pi / 2, np.pi / 2))
    width = np.where(up, 75.0 * c**0.55, _WIDTH_LOW(np.minimum(deg, 0)))
    front = np.where(up, 87.0 * c**0.9, _FRONT_LOW(np.minimum(deg, 0)))
    back = 100.0 * c**0.7
    y_low = _Y_LOW(np.abs(theta) / _DEG)
    y = np.where(up, 128.0 * np.sin(phi), y_low * np.sin(phi))
    ct, st = np.cos(theta), np.sin(theta)
    # The front is flatter than an ellipse: z = d cos(t) (1 + a sin^2(t)) keeps
    # the parametrisation smooth (no infinite speed anywhere) and monotone.
    flat = np.where(ct >= 0, 0.35, 0.0)
    depth = np.where(ct >= 0, front, back)
    x = width * st
    z = HEAD_CENTRE_Z + depth * ct * (1.0 + flat * st * st)
    return np.stack([x, y, z], axis=-1)


def eye_margins(x: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper and lower lid margins of one eye opening (mean face).

    Args:
        x: (n,) reference x in mm.
        side: -1 for the subject's right eye (x < 0), +1 for the left.

    Returns:
        ``(t, upper, lower)``: t in [-1, 1] from inner to outer corner (clipped),
        and the margin heights y (mm) at x.
    """
    t = np.clip((side * x - EYE_X) / EYE_HALF_WIDTH, -1.0, 1.0)
    s = np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0))
    # Almond: the upper lid peaks slightly toward the inner corner, the outer
    # corner is a little higher than the inner one (canthal tilt).
    tilt = 1.2 * t
    # The upper lid covers the top of the iris a little, the lower lid meets it.
    upper = EYE_Y + tilt + 5.0 * s**0.9 * (1.0 - 0.12 * t)
    lower = EYE_Y + tilt - 4.1 * s**1.1 * (1.0 + 0.1 * t)
    return t, upper, lower


def in_eye_opening(x: np.ndarray, y: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Whether reference points lie inside either eye opening (the hole in the skin)."""
    side = np.where(x < 0, -1.0, 1.0)
    t = (side * x - EYE_X) / EYE_HALF_WIDTH
    _, up, lo = eye_margins(x, side)
    return (np.abs(t) < 1.0) & (y < up - margin) & (y > lo + margin)


def lid_shell(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the eyelid skin over the eyeball.

    A paraboloid through the corneal apex plus the lid thickness, which stays
    at least ~1 mm in front of the eyeball wherever the eyeball exists but,
    unlike an offset of the ellipsoid, has no cliff at its rim.
    """
    side = np.where(x < 0, -1.0, 1.0)
    r2 = ((x - side * EYE_X) / EYEBALL_AXES[0]) ** 2 + ((y - EYE_Y) / EYEBALL_AXES[1]) ** 2
    return EYEBALL_Z + EYEBALL_AXES[2] + LID_THICKNESS - 7.6 * r2 / 0.81


# Nose profile along the midline: protrusion and half-width (mm) by height y.
_NOSE_Y = [-60, -54, -49, -45, -41, -37, -32, -24, -14, -4, 4, 12]
_NOSE_H = _pchip(_NOSE_Y, [0, 2, 6, 13, 19.5, 21, 18.5, 14, 9.5, 5.5, 2.5, 0.5])
_NOSE_W = _pchip(_NOSE_Y, [10, 10, 10, 10, 9.5, 8.5, 7, 5.8, 5.2, 5, 5.5, 7])


def _nose(x, y):
    """Nose protrusion (mm) from the nasal bridge to the subnasale."""
    yc = np.clip(y, -60, 12)
    h = np.where((y > 12) | (y < -60), 0.0, _NOSE_H(yc))
    ridge = h * np.exp(-0.5 * np.abs(x / _NOSE_W(yc)) ** 2.4)
    alae = 7.0 * gauss(np.abs(x), y, 12.5, -40.5, 4.5, 4.2)
    return ridge + alae


def feature_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Forward (z) displacement of the mean facial features at reference (x, y).

    Returns:
        (n,) displacement in mm (the lids are added separately, see :func:`lid_weight`).
    """
    ax = np.abs(x)
    dz = _nose(x, y)
    dz += 6.0 * gauss(ax, y, 27, 13, 15, 5.0) + 3.5 * gauss(x, y, 0, 9, 9, 7)  # brow ridge
    dz -= 6.0 * gauss(ax, y, 29, 4, 12, 10)  # eye sockets
    dz += 5.0 * gauss(ax, y, 44, -20, 13, 11)  # cheekbones
    dz += 3.0 * gauss(x, y, 0, -57, 24, 13)  # muzzle
    dz += 4.0 * gauss(x, y, 0, -65.5, 17, 3.8)  # upper lip
    dz += 3.6 * gauss(x, y, 0, -75, 14, 3.8)  # lower lip
    dz -= 1.0 * gauss(x, y, 0, -57, 2.2, 4.5)  # philtrum
    dz -= 3.0 * gauss(ax, y, 26.5, -70, 4.5, 5)  # mouth corners
    dz -= 2.0 * gauss(x, y, 0, -85, 13, 4)  # mentolabial sulcus
    dz += 5.0 * gauss(x, y, 0, -100, 14, 8)  # chin
    dz -= 3.0 * gauss(ax, y, 62, 22, 9, 14)  # temples
    return dz


def lid_weight(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the lids follow the eyeball: 1 around the opening, fading out over ~5 mm."""
    dx = np.abs(x) - EYE_X
    q = (dx / 15.0) ** 2 + ((y - EYE_Y - 1.0) / 10.0) ** 2
    return 1.0 - smoothstep(0.8, 1.7, q)


def hair_weight(theta: np.ndarray, x: np.ndarray, y: np.ndarray, hairline: float) -> np.ndarray:
    """Hair coverage in [0, 1] on the skin surface.

    Args:
        theta: (n,) azimuth (radians).
        x, y: (n,) reference coordinates (mm).
        hairline: height (mm) of the front hairline at the midline.
    """
    deg = np.abs(theta) / _DEG
    front_line = hairline - 0.006 * x * x + 4.0 * np.exp(-0.5 * (x / 14.0) ** 2)  # widow's peak
    front = smoothstep(front_line - 2.5, front_line + 2.5, y)
    # Sideburns come down in front of the ears; the back of the head is all hair.
    side_line = -18.0 + 60.0 * (1.0 - smoothstep(70, 92, deg))
    side = smoothstep(side_line - 3, side_line + 3, y) * smoothstep(60, 80, deg)
    back = smoothstep(95, 110, deg) * smoothstep(-65, -50, y)
    return np.clip(np.maximum(np.maximum(front, side), back), 0.0, 1.0)


def skin_surface(theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean skin surface and its reference coordinates.

    Returns:
        ``(points (n, 3), ref (n, 2))``.
    """
    base = head_base(theta, phi)
    x, y = base[:, 0], base[:, 1]
    front = np.clip(np.cos(theta), 0.0, 1.0) ** 2  # features only on the front
    z = base[:, 2] + feature_depth(x, y) * front
    # Lids wrap the eyeball: near the opening the skin rides on the lid shell.
    d = lid_shell(x, y) - z
    z = z + lid_weight(x, y) * 0.5 * (d + np.sqrt(d * d + 4.0))  # smooth max(d, 0): no crease
    pts = base.copy()
    pts[:, 2] = z
    # Hair adds a little volume, pushed out along the horizontal radius; it
    # starts well above the hairline so the forehead does not end in a step.
    hair = hair_weight(theta, x, y, hairline=74.0) * smoothstep(-60, -20, y)
    pts[:, 0] += 5.0 * hair * np.sin(theta)
    pts[:, 2] += 5.0 * hair * np.cos(theta)
    pts[:, 1] += 3.0 * hair * smoothstep(60, 110, y)
    return pts, np.stack([x, y], axis=-1)
