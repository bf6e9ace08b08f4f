"""IPD-FER's own edit for users: the same person and head pose with a neutral face.

G_dec(f_id + f_pose) of the paper (Figs. 8–9): E_id and E_pose read the face, the
decoder draws it without the expression. IPD-FER predicts no face mask, so the
crop is pasted back into the photo with a feathered ellipse over the aligned
face (:func:`~facefactors.inference.pasteback.template_face_mask`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from facefactors.errors import CheckpointError, ConfigError
from facefactors.inference.editor import EditResult
from facefactors.inference.faceinput import FaceInputs, crops_batch

if TYPE_CHECKING:
    from facefactors.ipd.model import IPDModel


def resolve_ipd_run(path: str | os.PathLike) -> Path:
    """A run folder's ``checkpoints/last.pt``, or the file itself.

    Raises:
        CheckpointError: missing, or a model file without IPD-FER's generator.
    """
    from facefactors.checkpoint import load_checkpoint
    from facefactors.export.classifier import FORMAT as EXPORT_FORMAT

    path = Path(path)
    file = path / "checkpoints" / "last.pt" if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"IPD-FER run {path} holds no checkpoints/last.pt.")
    fmt = load_checkpoint(file).get("format")
    if fmt == EXPORT_FORMAT:
        raise CheckpointError(
            f"Checkpoint {file} is an exported expression classifier (E_exp and C_exp only), "
            "which has no generator; pass the IPD-FER run folder or its checkpoints/last.pt."
        )
    if isinstance(fmt, str) and fmt.startswith("facefactors.tensorial"):
        raise CheckpointError(
            f"Checkpoint {file} is a tensorial model; neutralize needs an IPD-FER run "
            "(use the other edit commands with it)."
        )
    return file


class Neutralizer:
    """G_dec(f_id + f_pose) of a trained IPD-FER model (the ``ipd`` variant or ``no_pose``).

    Args:
        model: the full trained model (its decoder and E_id at least).
        device, weights_dir, min_face_size: as :class:`~facefactors.inference.FaceEditor`.
        feather: blur of the pasted-back ellipse as a fraction of the crop side.

    Raises:
        ConfigError: the baseline variant, which has no decoder.
    """

    def __init__(
        self,
        model: IPDModel,
        device: str | torch.device = "cpu",
        weights_dir: str | os.PathLike | None = None,
        min_face_size: float = 20,
        feather: float = 0.06,
    ) -> None:
        if model.dec is None:
            raise ConfigError(
                "This IPD-FER run is the baseline variant, which has no decoder to draw a "
                "neutral face with."
            )
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.inputs = FaceInputs(model.input_size, self.device, weights_dir, min_face_size)
        self.feather = float(feather)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs: Any) -> Neutralizer:
        """Load an IPD-FER run folder or its training ``last.pt`` (safely)."""
        from facefactors.ipd.train import load_trained

        model, _cfg = load_trained(resolve_ipd_run(path))
        return cls(model, **kwargs)

    @torch.inference_mode()
    def neutralize(self, image: Any, aligned: bool | None = None) -> EditResult:
        """The single face of ``image`` made neutral, as a crop and pasted back."""
        from facefactors.imaging import to_hwc_uint8
        from facefactors.inference.pasteback import (
            feathered_alpha,
            paste_back,
            template_face_mask,
        )

        face = self.inputs.one(image, "image", aligned)
        fake = self.model.generate(crops_batch([face]).to(self.device))["ip"]
        crop = to_hwc_uint8(fake.cpu())[0]
        mask = template_face_mask(self.inputs.size)
        photo, weight = paste_back(
            face.photo, crop, feathered_alpha(mask, self.feather), face.matrix
        )
        return EditResult(crop, photo, weight, mask)
