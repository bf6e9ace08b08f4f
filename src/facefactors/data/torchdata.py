"""Torch side of the data: :class:`FaceDataset` and a small augmentation function.

A :class:`FaceDataset` decodes one split of a :class:`DatasetIndex` (image files or
inline FER pixels) into normalised tensors, with expression, pose-bin and identity
targets; unknown targets are ``-1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from facefactors.data.io import grey_to_rgb, load_image_rgb, to_tensor
from facefactors.data.records import DatasetIndex, Sample
from facefactors.errors import DataError

# transform(img, rng) -> (img, flipped): flipped tells the dataset to negate yaw.
Transform = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, bool]]


def augment(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    flip_p: float = 0.5,
    min_scale: float = 0.85,
) -> tuple[np.ndarray, bool]:
    """Random square crop (scale jitter + shift), resized back, and horizontal flip.

    A flip mirrors the head, so yaw changes sign while the |yaw| pose bin stays the
    same; the caller negates yaw when ``flipped`` is True.

    Args:
        img: (H, W, 3) uint8.
        rng: Source of randomness (the result is a pure function of ``img`` and its state).
        flip_p: Probability of a horizontal flip.
        min_scale: Smallest crop side as a fraction of ``min(H, W)``; 1 disables cropping.

    Returns:
        ``(image, flipped)`` with the image (H, W, 3) uint8.
    """
    import cv2

    h, w = img.shape[:2]
    if min_scale < 1.0:
        side = max(1, int(round(min(h, w) * rng.uniform(min_scale, 1.0))))
        top = int(rng.integers(0, h - side + 1))
        left = int(rng.integers(0, w - side + 1))
        crop = img[top : top + side, left : left + side]
        img = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    flipped = bool(rng.random() < flip_p)
    if flipped:
        img = img[:, ::-1]
    return np.ascontiguousarray(img), flipped


def decode_sample(sample: Sample) -> np.ndarray:
    """The (H, W, 3) uint8 RGB image of a sample (file or inline grey pixels)."""
    if sample.pixels is not None:
        return grey_to_rgb(sample.pixels)
    if sample.path is None:
        raise DataError("A sample has neither an image path nor inline pixels.")
    return load_image_rgb(sample.path)


class FaceDataset(Dataset):
    """One split of a dataset as tensors.

    Each item is a dict:
        ``image``: (3, size, size) float32 in [-1, 1];
        ``expression``: label index (``len(classes)`` for extra neutral references);
        ``pose_bin``: 0..4, or -1 when unknown;
        ``identity``: subject index into ``index.subjects``, or -1;
        ``yaw``: degrees (negated on flips), NaN when unknown;
        ``index``: position of the sample in the split.

    Args:
        index: The dataset.
        split: Split name (``"train"``, ``"test"``, ...).
        size: Output side length in pixels.
        transform: Optional ``transform(img, rng) -> (img, flipped)``, e.g.
            :func:`augment` (use ``functools.partial`` to set its options).
        pose: Pose bins per sample: a sequence aligned with the split's samples, or a
            mapping from image path to bin. Default: ``sample.meta["pose_bin"]``.

    Raises:
        DataError: Empty split, or a pose sequence of the wrong length.
    """

    def __init__(
        self,
        index: DatasetIndex,
        split: str,
        size: int,
        transform: Transform | None = None,
        pose: Sequence[int] | Mapping[str, int] | None = None,
    ) -> None:
        self.index = index
        self.split_name = split
        self.samples = index.split(split)
        self.size = int(size)
        self.transform = transform
        self._subject_ids = {s: i for i, s in enumerate(index.subjects)}
        if pose is not None and not isinstance(pose, Mapping) and len(pose) != len(self.samples):
            raise DataError(
                f"The pose list has {len(pose)} entries but split {split!r} of "
                f"{index.name} has {len(self.samples)} samples."
            )
        self.pose = pose

    def __len__(self) -> int:
        return len(self.samples)

    def _pose_bin(self, i: int, sample: Sample) -> int:
        if self.pose is None:
            value = sample.meta.get("pose_bin", -1)
        elif isinstance(self.pose, Mapping):
            value = self.pose.get(sample.path or "", -1)
        else:
            value = self.pose[i]
        return int(value)

    def __getitem__(self, i: int) -> dict:
        sample = self.samples[i]
        img = decode_sample(sample)
        yaw = float(sample.meta.get("yaw", math.nan))
        if self.transform is not None:
            # Draw the seed from torch so torch.manual_seed and DataLoader worker
            # seeding make augmentation reproducible and different per worker.
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            img, flipped = self.transform(img, rng)
            if flipped:
                yaw = -yaw
        subject = sample.subject
        return {
            "image": to_tensor(img, self.size),
            "expression": sample.label,
            "pose_bin": self._pose_bin(i, sample),
            "identity": self._subject_ids[subject] if subject is not None else -1,
            "yaw": yaw,
            "index": i,
        }
