"""Image decoding and the tensor conversion used everywhere (DESIGN.md §5).

Decoding is strict: a missing, corrupt or truncated file raises a
:class:`DataError` naming it. PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never
turned on, because accepting half a JPEG silently trains on grey blocks.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facefactors.errors import DataError

if TYPE_CHECKING:  # torch is imported lazily: decoding alone must not pay for it
    import torch

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})


def is_image_name(name: str | os.PathLike) -> bool:
    """Whether a file name has an image suffix we decode (case-insensitive)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def _to_uint8_rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) array of any integer depth -> (H, W, 3) uint8."""
    if arr.dtype != np.uint8:
        # 16-bit greyscale PNGs (some CK+ releases) would saturate under PIL's convert.
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr.astype(np.float64) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def load_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to RGB.

    EXIF orientation is applied, grey and palette images become RGB, alpha is dropped.

    Args:
        path: Image file (JPEG, PNG, BMP, TIFF).

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        DataError: The file is missing, not an image, corrupt or truncated.
    """
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Image {path} does not exist.")
    # Someone else in the process may have flipped the global; refuse rather than
    # decode truncated files as partially grey images.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # A truncated JPEG can surface as a warning; make it an error.
            warnings.simplefilter("error", UserWarning)
            with Image.open(path) as probe:
                probe.verify()
            with Image.open(path) as img:
                img.load()
                img = ImageOps.exif_transpose(img)
                if img.mode in ("I", "I;16", "I;16B", "I;16L"):
                    return _to_uint8_rgb(np.asarray(img))
                return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise DataError(f"Image {path} is not a readable image file.") from None
    except (OSError, SyntaxError, ValueError, UserWarning, Image.DecompressionBombError) as exc:
        raise DataError(f"Image {path} is corrupt or truncated ({exc}).") from None


def grey_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) grey uint8 -> (H, W, 3) uint8 (FER2013 rows)."""
    return _to_uint8_rgb(pixels[..., 0] if pixels.ndim == 3 else pixels)


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 to (size, size, 3); area filter when shrinking."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def to_tensor(img: np.ndarray, size: int | None = None) -> torch.Tensor:
    """Image array -> normalised float tensor, ``(x / 255 - 0.5) / 0.5``.

    Args:
        img: (H, W, 3), (H, W) or (H, W, 1) uint8 array; grey is replicated to RGB.
        size: Output side length (the image is resized to a square); None keeps (H, W).

    Returns:
        (3, size, size) float32 tensor in [-1, 1] ((3, H, W) when ``size`` is None).
    """
    import torch

    if img.dtype != np.uint8:
        raise DataError(f"to_tensor expects a uint8 image, got dtype {img.dtype}.")
    rgb = img if img.ndim == 3 and img.shape[2] == 3 else grey_to_rgb(img)
    if size is not None:
        rgb = resize_square(rgb, size)
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
    return (t / 255.0 - 0.5) / 0.5
