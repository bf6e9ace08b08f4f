"""Conversions between the networks' image range and 8-bit pixels.

Every network in facefactors reads RGB images as float tensors in [-1, 1],
``x = (p / 255 − 0.5) / 0.5`` for 8-bit pixels ``p``. These three functions are
the only place that mapping (and its inverse) is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from facefactors.errors import DataError


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] → uint8 pixels, same shape (e.g. (B, 3, H, W)); clamps first."""
    return ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float32 in [-1, 1] (``(p / 255 − 0.5) / 0.5``), same shape."""
    return pixels.float() / 127.5 - 1.0


def to_hwc_uint8(images: Any) -> np.ndarray:
    """Images in [-1, 1], (B, 3, H, W) or (B, 1, H, W) tensor or array → (B, H, W, 3) uint8.

    Raises:
        DataError: the input is not a batch of 1- or 3-channel images.
    """
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(
            f"Images must have shape (B, 3, H, W) or (B, 1, H, W), got {tuple(x.shape)}."
        )
    arr = to_uint8(x.cpu()).permute(0, 2, 3, 1).numpy()
    return np.repeat(arr, 3, axis=3) if arr.shape[3] == 1 else arr
