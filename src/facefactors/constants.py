"""Constants shared across the toolkit (DESIGN.md §4, §5)."""

from __future__ import annotations

# Canonical expression classes; every dataset maps its own codes onto these names.
CANONICAL_CLASSES: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
NEUTRAL = "neutral"

# RAF-DB basic labels 1..7 (list_patition_label.txt).
RAFDB_CODES: dict[int, str] = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "happy",
    5: "sad",
    6: "anger",
    7: "neutral",
}

# 5-point ArcFace template for 112x112 crops: left eye, right eye, nose,
# left mouth corner, right mouth corner (x, y) in pixels.
ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

# Pose label = bin of |yaw| in degrees: [0,10) [10,20) [20,30) [30,40) [40,inf).
POSE_BIN_EDGES: tuple[float, ...] = (10.0, 20.0, 30.0, 40.0)
NUM_POSE_BINS = len(POSE_BIN_EDGES) + 1


def pose_bin(yaw_deg: float) -> int:
    """Pose class 0..4 of a yaw angle in degrees (bins on |yaw|)."""
    a = abs(float(yaw_deg))
    return sum(a >= e for e in POSE_BIN_EDGES)


def arcface_template(size: int = 112):
    """The 5-point template scaled to a ``size`` x ``size`` crop, as a (5, 2) float64 array."""
    import numpy as np

    return np.asarray(ARCFACE_TEMPLATE_112, dtype=np.float64) * (size / 112.0)


# Normalisations IPD-FER's decoder offers per stage (facefactors.ipd.decoder).
DECODER_NORMS = ("instance", "batch", "none")
