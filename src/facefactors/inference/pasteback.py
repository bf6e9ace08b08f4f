"""Paste an edited face crop back into the photo it was aligned from.

The aligned crop was made with ``crop = warpAffine(photo, M)`` (M, 2 × 3, photo →
crop; :func:`facefactors.faces.align.alignment_matrix`). The edited crop goes back
with the inverse of the same map, and is blended over the photo with the model's
predicted face mask, feathered: blurred inside the crop and faded to 0 at the
crop's border, so no seam and no crop edge shows. Pixels where the warped weight
is 0 are the photo's own pixels, bit for bit.
"""

from __future__ import annotations

import numpy as np


def feathered_alpha(mask: np.ndarray, feather: float = 0.06) -> np.ndarray:
    """A soft blending weight in the crop from the model's mask.

    Args:
        mask: (S, S) float mask in [0, 1] (the decoder's predicted face mask).
        feather: blur radius as a fraction of S (Gaussian sigma = feather · S / 2).

    Returns:
        (S, S) float32 in [0, 1]: the mask, shrunk a little, blurred, and forced to 0
        within ``feather · S`` of the crop border.
    """
    import cv2

    s = mask.shape[0]
    m = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    r = max(1, round(feather * s))
    m = cv2.erode(m, np.ones((2 * r - 1, 2 * r - 1), np.uint8)) if r > 1 else m
    sigma = max(0.5, feather * s / 2.0)
    m = cv2.GaussianBlur(m, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    ramp = np.clip(np.minimum(np.arange(s), np.arange(s)[::-1]) / r, 0.0, 1.0).astype(np.float32)
    return np.clip(m * ramp[:, None] * ramp[None, :], 0.0, 1.0)


def template_face_mask(size: int) -> np.ndarray:
    """(S, S) float32 ellipse over the face of an ArcFace-aligned crop (a model without a mask).

    Centred on the template's landmarks horizontally, from the brows to the chin.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cx, cy, ax, ay = 0.5 * size, 0.56 * size, 0.34 * size, 0.44 * size
    return (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0).astype(np.float32)


def paste_back(
    photo: np.ndarray, crop: np.ndarray, alpha: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The photo with ``crop`` warped back into place and blended with ``alpha``.

    Args:
        photo: (H, W, 3) uint8 RGB, the image the crop was aligned from.
        crop: (S, S, 3) uint8 RGB, the edited crop.
        alpha: (S, S) float weights in [0, 1] (:func:`feathered_alpha`).
        matrix: (2, 3) photo → crop transform that made the aligned crop.

    Returns:
        ``(image (H, W, 3) uint8, weight (H, W) float32)``; ``image`` equals ``photo``
        exactly wherever ``weight`` is 0.
    """
    import cv2

    h, w = photo.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # matrix maps output (photo) → crop
    m = np.asarray(matrix, dtype=np.float64)
    face = cv2.warpAffine(crop, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    weight = cv2.warpAffine(
        np.asarray(alpha, dtype=np.float32), m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT
    )
    weight = np.clip(weight, 0.0, 1.0)
    a = weight[:, :, None]
    blend = np.rint(photo.astype(np.float32) * (1.0 - a) + face.astype(np.float32) * a)
    out = np.where(a > 0.0, blend.astype(np.uint8), photo)
    return np.ascontiguousarray(out), weight
