"""One training batch of the tensorial model: images and their pseudo ground truth.

The field names are those of :class:`facefactors.synth.dataset.SynthFaces`
items, which supply every pseudo ground-truth value exactly; for real images
they come from fitting a face model (DESIGN.md §7) and any that a fit cannot
give stay None, which leaves the terms that need them out of the loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch

PSEUDO_GT = ("rotation", "id_coeffs", "exp_coeffs", "vertices", "normals", "sh", "mask", "yaw")


@dataclass
class Batch:
    """Images and pseudo ground truth (x̂_p, x̂_id, x̂_exp, x̂_3d, normals, light, mask).

    Attributes:
        image: (B, 3, S, S) input x in [-1, 1].
        rotation: (B, 3, 3) head rotation x̂_p (Eq. 9).
        id_coeffs: (B, K_id) identity coefficients x̂_id (Eq. 11).
        exp_coeffs: (B, K_exp) expression coefficients x̂_exp (Eq. 10).
        vertices: (B, V, 3) 3D shape x̂_3d in head-frame mm, no pose (Eq. 12).
        normals: (B, 3, S, S) unit camera-frame normals, 0 off the face (Eq. 14, NFE).
        sh: (B, 3, 9) SH lighting, one row per colour channel (NFE light term).
        mask: (B, 1, S, S) face mask in [0, 1] (NFE mask term).
        yaw: (B,) degrees, selects the near-frontal samples of Eqs. 13–14.
    """

    image: torch.Tensor
    rotation: torch.Tensor | None = None
    id_coeffs: torch.Tensor | None = None
    exp_coeffs: torch.Tensor | None = None
    vertices: torch.Tensor | None = None
    normals: torch.Tensor | None = None
    sh: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    yaw: torch.Tensor | None = None

    @classmethod
    def from_synth(cls, item: Mapping[str, torch.Tensor], device: torch.device | str | None = None):
        """From a ``SynthFaces.batch(...)`` dict (or any dict with these keys).

        Keys missing from ``item`` stay None; values are moved to ``device``.
        """
        values = {k: item[k] for k in ("image", *PSEUDO_GT) if k in item}
        return cls(**values).to(device)

    def to(self, device: torch.device | str | None) -> Batch:
        """The same batch on ``device`` (None fields stay None)."""
        if device is None:
            return self
        moved = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
        }
        return Batch(**moved)

    def __len__(self) -> int:
        return self.image.shape[0]
