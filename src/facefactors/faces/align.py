"""5-point face alignment: a least-squares similarity transform onto the ArcFace template.

:func:`similarity_transform` is Umeyama's closed-form least-squares estimate of
scale, rotation (no reflection) and translation, in float64 numpy.
:func:`align_face` warps an image so that its five landmarks land on
``facefactors.constants.arcface_template(size)`` (DESIGN.md §5).
"""

from __future__ import annotations

import numpy as np

from facefactors.constants import arcface_template
from facefactors.errors import DataError

# Below this spread (in pixels, RMS distance to the centroid) the source points
# do not determine a scale or rotation.
_MIN_SPREAD = 1e-6


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` onto ``dst`` (Umeyama, 1991).

    Minimises ``sum_i ||s R src_i + t - dst_i||^2`` over scale ``s > 0``, a proper
    rotation ``R`` (det +1: a mirror image is never produced) and translation ``t``,
    in the plane (landmarks) or in space (mesh vertices).

    Args:
        src: (N, D) source points, D = 2 or 3, N >= D.
        dst: (N, D) destination points.

    Returns:
        (D, D + 1) float64 matrix ``[s R | t]`` such that ``dst ≈ M[:, :D] @ p + M[:, D]``.

    Raises:
        DataError: if the shapes differ, a coordinate is not finite, or the source
            points all coincide.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if (
        src.ndim != 2
        or src.shape[1] not in (2, 3)
        or src.shape != dst.shape
        or src.shape[0] < src.shape[1]
    ):
        raise DataError(
            "similarity_transform needs two (N, D) point arrays with D = 2 or 3, N >= D and "
            f"equal shapes, got src {src.shape} and dst {dst.shape}."
        )
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise DataError("similarity_transform got a NaN or infinite landmark coordinate.")
    n = src.shape[0]
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    sc = src - mu_s
    dc = dst - mu_d
    var_s = (sc**2).sum() / n
    if var_s < _MIN_SPREAD**2:
        raise DataError(
            "similarity_transform got source landmarks that all coincide, so no scale or "
            "rotation can be estimated."
        )
    cov = dc.T @ sc / n
    u, sig, vt = np.linalg.svd(cov)
    # Flip the last singular direction when the best orthogonal map is a reflection.
    d = np.ones(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / var_s)
    t = mu_d - scale * rot @ mu_s
    return np.concatenate([scale * rot, t[:, None]], axis=1)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points; returns (N, 2) float64."""
    matrix = np.asarray(matrix, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def alignment_matrix(landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """The (2, 3) transform taking five landmarks onto the ``size`` x ``size`` template.

    Args:
        landmarks5: (5, 2) points in the order left eye, right eye, nose, left mouth
            corner, right mouth corner (image left/right).
        size: side of the aligned crop in pixels (112 or 64 in this toolkit).
    """
    landmarks5 = np.asarray(landmarks5, dtype=np.float64)
    if landmarks5.shape != (5, 2):
        raise DataError(f"align_face needs (5, 2) landmarks, got shape {landmarks5.shape}.")
    return similarity_transform(landmarks5, arcface_template(size))


def align_face(image: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp a face so its five landmarks match the ArcFace template.

    Args:
        image: (H, W, 3) uint8 RGB image.
        landmarks5: (5, 2) landmarks in image pixels (see :func:`alignment_matrix`).
        size: output side in pixels; the template is scaled by ``size / 112``.

    Returns:
        (size, size, 3) uint8 aligned crop; pixels mapped from outside the image are 0.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(
            f"align_face needs an (H, W, 3) uint8 image, got shape {image.shape} "
            f"and dtype {image.dtype}."
        )
    if size < 8:
        raise DataError(f"align_face needs size >= 8 pixels, got {size}.")
    matrix = alignment_matrix(landmarks5, size)
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
