"""Images in any form → aligned face crops with the transform that placed each one.

Shared by the face editors (:mod:`facefactors.inference.editor`,
:mod:`facefactors.inference.neutralize`): an input is a path, an RGB uint8 array,
a PIL image, or an aligned float tensor in [-1, 1] (the forms
:class:`~facefactors.inference.recognizer.ExpressionRecognizer` takes). Photos go
through the MTCNN pipeline at the model's input size; an already aligned crop
(``aligned=True``, or by default any image of exactly the model's size) is used as
it is, with the identity transform, so nothing needs the MTCNN weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facefactors.errors import DataError
from facefactors.inference.io import is_video_name
from facefactors.inference.recognizer import ExpressionRecognizer, _as_item_list

if TYPE_CHECKING:
    from facefactors.faces.pipeline import FacePipeline

IDENTITY_MATRIX = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclass
class AlignedFace:
    """One face ready for a model.

    Attributes:
        crop: (S, S, 3) uint8 RGB aligned to the ArcFace template at the model size.
        matrix: (2, 3) float64 photo → crop transform (identity for an aligned input).
        photo: (H, W, 3) uint8 RGB the crop came from (the crop itself when aligned).
        source: the file name, or ``input[i]``.
        face_index: position among the faces of its image (by detection score).
        pixels: (3, S, S) float in [-1, 1] for an aligned tensor input, which the model
            then reads unquantised (``crop`` is its uint8 copy); else ``None``.
    """

    crop: np.ndarray
    matrix: np.ndarray
    photo: np.ndarray = field(repr=False)
    source: str
    face_index: int = 0
    pixels: torch.Tensor | None = field(default=None, repr=False)


def crops_batch(faces: Sequence[AlignedFace]) -> torch.Tensor:
    """(N, 3, S, S) float32 in [-1, 1] of the faces (``pixels`` where given, else ``crop``)."""
    from facefactors.inference.recognizer import crops_to_tensor

    x = crops_to_tensor(np.stack([f.crop for f in faces]))
    for i, f in enumerate(faces):
        if f.pixels is not None:
            x[i] = f.pixels
    return x


class FaceInputs:
    """Detect and align faces for a model of input size ``size``.

    Args:
        size: side S of the model's aligned crops.
        device: torch device for MTCNN.
        weights_dir: MTCNN weight folder (``None``: the cache folder).
        min_face_size: MTCNN's smallest face in pixels.
    """

    def __init__(
        self,
        size: int,
        device: str | torch.device = "cpu",
        weights_dir: str | os.PathLike | None = None,
        min_face_size: float = 20,
    ) -> None:
        self.size = int(size)
        self.device = torch.device(device)
        self.weights_dir = weights_dir
        self.min_face_size = float(min_face_size)
        self._pipeline: FacePipeline | None = None

    @property
    def pipeline(self) -> FacePipeline:
        """MTCNN + alignment at the model size, built on first use.

        Raises:
            WeightsError: the MTCNN weights are missing (names the fetch command).
        """
        if self._pipeline is None:
            from facefactors.faces.mtcnn import MTCNN
            from facefactors.faces.pipeline import FacePipeline

            mtcnn = MTCNN(self.weights_dir, device=self.device, min_face_size=self.min_face_size)
            self._pipeline = FacePipeline(mtcnn, size=self.size)
        return self._pipeline

    def faces(self, images: Any, aligned: bool | None = None) -> list[list[AlignedFace]]:
        """Per input item, its faces (by decreasing detection score).

        Args:
            images: one item or a list (paths, RGB uint8 (H, W, 3) arrays or a
                (B, H, W, 3) stack, PIL images, aligned float (B, 3, S, S) tensors).
            aligned: ``True``: every image is an aligned S × S crop; ``False``: always
                detect; ``None``: an image of exactly S × S is taken as aligned.

        Raises:
            DataError: an unreadable file, a video, a wrong type or shape, or an image
                that is not S × S where ``aligned`` is True.
            WeightsError: detection is needed but the MTCNN weights are missing.
        """
        s = self.size
        out: list[list[AlignedFace]] = []
        for i, item in enumerate(_as_item_list(images)):
            if isinstance(item, torch.Tensor):
                out.append(self._tensor_faces(item, f"input[{i}]"))
                continue
            if isinstance(item, (str, os.PathLike)) and is_video_name(item):
                raise DataError(f"Input {item} is a video; pass a still image here.")
            name, photo = ExpressionRecognizer._load(item, i)
            if aligned or (aligned is None and photo.shape[:2] == (s, s)):
                if photo.shape[:2] != (s, s):
                    raise DataError(
                        f"Aligned input {name} must be {s} x {s} pixels for this model, "
                        f"got {photo.shape[1]} x {photo.shape[0]}."
                    )
                out.append([AlignedFace(photo, IDENTITY_MATRIX.copy(), photo, name)])
                continue
            out.append(self.detect(photo, name))
        return out

    def detect(self, photo: np.ndarray, name: str) -> list[AlignedFace]:
        """Faces of one RGB uint8 (H, W, 3) photo, detected and aligned at the model size."""
        from facefactors.faces.align import alignment_matrix

        found = self.pipeline.process(photo)
        return [
            AlignedFace(f.aligned, alignment_matrix(f.landmarks5, self.size), photo, name, k)
            for k, f in enumerate(found)
        ]

    def one(self, image: Any, role: str, aligned: bool | None = None) -> AlignedFace:
        """The single face of one input.

        Raises:
            DataError: the input holds no face, or more than one (one sentence naming it).
        """
        items = self.faces(image, aligned)
        if len(items) != 1:
            raise DataError(f"The {role} must be one image, got {len(items)}.")
        faces = items[0]
        name = _name(image)
        if not faces:
            raise DataError(f"No face was found in the {role} {name}.")
        if len(faces) > 1:
            raise DataError(
                f"The {role} {name} shows {len(faces)} faces where one is needed; "
                "crop it to one face."
            )
        return faces[0]

    def _tensor_faces(self, x: torch.Tensor, source: str) -> list[AlignedFace]:
        """Rows of an aligned (B, 3, S, S) or (3, S, S) float tensor in [-1, 1]."""
        from facefactors.imaging import to_hwc_uint8

        s = self.size
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s) or not x.is_floating_point():
            raise DataError(
                f"Aligned {source} must be a float (B, 3, {s}, {s}) tensor for this model, "
                f"got {tuple(x.shape)} {x.dtype}."
            )
        if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
            raise DataError(f"Aligned {source} must hold values in [-1, 1].")
        x = x.detach().float().cpu()
        crops = to_hwc_uint8(x)
        return [AlignedFace(c, IDENTITY_MATRIX.copy(), c, source, k, x[k])
                for k, c in enumerate(crops)]  # fmt: skip


def _name(image: Any) -> str:
    """The name of a single input in messages: its path, or ``input[0]``."""
    return str(image) if isinstance(image, (str, os.PathLike)) else "input[0]"
