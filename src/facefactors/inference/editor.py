"""Face editing with a trained tensorial model: codes, swaps, interpolation, mesh, paste back.

:class:`FaceEditor` encodes each face into its factor codes (:class:`FaceCodes`:
background z_b, mask z_m, SH light z_l, head rotation R = SO3(z_p), identity z_id,
expression z_exp), edits them (swap one code from another face, Eq. 18 of the
paper, or walk between two faces) and decodes. The decoder draws the mask and
background with the pooling state of the face that gave z_b and z_m, so an edit
keeps the target's own. Every edit returns the decoded crop and the whole photo
with that crop warped back by the inverse alignment transform and blended with
the model's predicted mask (:mod:`facefactors.inference.pasteback`).

The pose code enters the decoder only through its SO(3) projection, so
:class:`FaceCodes` stores the rotation itself (projecting a rotation gives it back)
and ``yaw``/``pitch``/``roll`` are read from it in the renderer's convention
(``R = Rz(roll) Rx(pitch) Ry(yaw)``).

Example:
    >>> ed = FaceEditor.from_checkpoint("runs/tensorial")
    >>> out = ed.transfer_expression("me.jpg", "smile.jpg")
    >>> out.image.shape  # the whole photo, face edited
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facefactors.errors import CheckpointError, DataError
from facefactors.inference.faceinput import AlignedFace, FaceInputs, crops_batch

if TYPE_CHECKING:
    from facefactors.inference.mesh import Mesh
    from facefactors.tensorial.config import TensorialConfig
    from facefactors.tensorial.model import Codes, TensorialModel, TensorialOutput
    from facefactors.tensorial.nets import PoolState

# interpolate()'s factors and the FaceCodes field each one walks.
FACTORS: dict[str, str] = {
    "expression": "expression",
    "identity": "identity",
    "pose": "rotation",
    "light": "light",
}


@dataclass
class FaceCodes:
    """The factor codes of one face, with the crop they came from.

    Attributes:
        background: (z_b,) background code z_b.
        mask: (z_m,) mask code z_m.
        light: (C, 9) SH lighting code z_l (C = 3 colour rows, or 1 grey).
        rotation: (3, 3) head rotation SO3(z_p).
        identity: (k_id,) identity code z_id.
        expression: (k_exp,) expression code z_exp.
        face: the aligned crop, its transform and its photo.
        z: (code_dim,) the intermediate code z_i (the decoder only reads its batch size).
        state: the encoder's pooling state for this face (batch of 1).
    """

    background: torch.Tensor
    mask: torch.Tensor
    light: torch.Tensor
    rotation: torch.Tensor
    identity: torch.Tensor
    expression: torch.Tensor
    face: AlignedFace
    z: torch.Tensor = field(repr=False)
    state: PoolState = field(repr=False)

    @property
    def ypr(self) -> np.ndarray:
        """(3,) yaw, pitch, roll in degrees of :attr:`rotation`."""
        from facefactors.tensorial.ops import ypr_from_rotation

        return ypr_from_rotation(self.rotation.double()).numpy()

    @property
    def yaw(self) -> float:
        return float(self.ypr[0])

    @property
    def pitch(self) -> float:
        return float(self.ypr[1])

    @property
    def roll(self) -> float:
        return float(self.ypr[2])

    @property
    def crop(self) -> np.ndarray:
        """(S, S, 3) uint8 the aligned input crop."""
        return self.face.crop

    @property
    def matrix(self) -> np.ndarray:
        """(2, 3) photo → crop transform that placed the crop."""
        return self.face.matrix

    def replace(self, **changes: Any) -> FaceCodes:
        """A copy with some fields changed (e.g. ``expression=other.expression``)."""
        return dataclasses.replace(self, **changes)


@dataclass
class EditResult:
    """One edited face.

    Attributes:
        crop: (S, S, 3) uint8 the decoded (edited) crop.
        image: (H, W, 3) uint8 the input photo with the crop pasted back.
        weight: (H, W) float32 blending weight in the photo (0: the photo's own pixel).
        mask: (S, S) float32 the face mask the crop was blended with (the tensorial
            model's prediction for the edit; a template ellipse for IPD-FER).
        codes: the codes that were decoded (``None`` for IPD-FER's neutral face).
    """

    crop: np.ndarray
    image: np.ndarray
    weight: np.ndarray
    mask: np.ndarray
    codes: FaceCodes | None = None


def resolve_run_file(path: str | os.PathLike) -> Path:
    """A run folder's ``model.pt`` (else ``checkpoints/last.pt``), or the file itself.

    Raises:
        CheckpointError: a folder with neither, or a path that does not exist.
    """
    path = Path(path)
    if path.is_dir():
        for rel in ("model.pt", "checkpoints/last.pt"):
            if (path / rel).is_file():
                return path / rel
        raise CheckpointError(f"Run folder {path} holds neither model.pt nor checkpoints/last.pt.")
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    return path


class FaceEditor:
    """Encode, edit and decode faces with a tensorial model.

    Args:
        model: a trained :class:`~facefactors.tensorial.model.TensorialModel` (eval mode).
        device: torch device for the model and MTCNN.
        weights_dir: MTCNN weight folder (``None``: the cache folder).
        min_face_size: MTCNN's smallest face in pixels.
        batch_size: faces per model call.
        feather: blur of the pasted-back mask as a fraction of the crop side.
    """

    def __init__(
        self,
        model: TensorialModel,
        device: str | torch.device = "cpu",
        weights_dir: str | os.PathLike | None = None,
        min_face_size: float = 20,
        batch_size: int = 32,
        feather: float = 0.06,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.inputs = FaceInputs(model.cfg.image_size, self.device, weights_dir, min_face_size)
        self.batch_size = max(1, int(batch_size))
        self.feather = float(feather)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs: Any) -> FaceEditor:
        """Load a tensorial run folder, its ``model.pt`` or a training ``last.pt`` (safely).

        Raises:
            CheckpointError: missing, unreadable, of another method, or a Z_0 baseline.
        """
        from facefactors.tensorial.checkpoints import load_generator
        from facefactors.tensorial.model import TensorialModel

        file = resolve_run_file(path)
        model, _cfg = load_generator(file)
        if not isinstance(model, TensorialModel):
            raise CheckpointError(
                f"Checkpoint {file} is a Z_0 baseline, which has no factor codes to edit."
            )
        return cls(model, **kwargs)

    @property
    def config(self) -> TensorialConfig | Any:
        return self.model.cfg

    @property
    def input_size(self) -> int:
        """Side S of the aligned crops."""
        return int(self.model.cfg.image_size)

    # -- codes ------------------------------------------------------------------------

    @torch.inference_mode()
    def encode_faces(self, faces: Sequence[AlignedFace]) -> list[FaceCodes]:
        """Codes of aligned faces, in batches of ``batch_size``."""
        from facefactors.tensorial.nets import PoolState

        out: list[FaceCodes] = []
        for i in range(0, len(faces), self.batch_size):
            chunk = list(faces[i : i + self.batch_size])
            codes, state = self.model.encode(crops_batch(chunk).to(self.device))
            rot = _rotations(codes.z_p)
            for k, face in enumerate(chunk):
                one = PoolState([t[k : k + 1] for t in state.indices],
                                [t[k : k + 1] for t in state.skips])  # fmt: skip
                out.append(FaceCodes(codes.z_b[k], codes.z_m[k], codes.z_l[k], rot[k],
                                     codes.z_id[k], codes.z_exp[k], face, codes.z[k], one))  # fmt: skip
        return out

    def encode(self, images: Any, aligned: bool | None = None) -> list[FaceCodes]:
        """Codes of every face of ``images`` (in input order, faces by detection score).

        Args:
            images: paths, RGB uint8 arrays, PIL images or aligned float tensors
                (see :meth:`FaceInputs.faces`).
            aligned: see :meth:`FaceInputs.faces`.
        """
        return self.encode_faces([f for fs in self.inputs.faces(images, aligned) for f in fs])

    def encode_one(self, image: Any, role: str = "image", aligned: bool | None = None) -> FaceCodes:
        """Codes of the single face of one input (DataError for none or several)."""
        return self.encode_faces([self.inputs.one(image, role, aligned)])[0]

    @torch.inference_mode()
    def decode_output(self, codes: Sequence[FaceCodes]) -> TensorialOutput:
        """The decoder's full output for a list of codes (one batch)."""
        return self.model.decode(*_stack(codes))

    def decode(self, codes: FaceCodes | Sequence[FaceCodes]) -> np.ndarray:
        """(N, S, S, 3) uint8 decoded crops."""
        return self.render([codes] if isinstance(codes, FaceCodes) else list(codes), paste=False)[0]

    def render(
        self, codes: Sequence[FaceCodes], paste: bool = True
    ) -> tuple[np.ndarray, list[EditResult]]:
        """Decode codes and paste each crop back into its face's photo.

        Returns:
            ``(crops (N, S, S, 3) uint8, results)``; ``results`` is empty without ``paste``.
        """
        from facefactors.imaging import to_hwc_uint8
        from facefactors.inference.pasteback import feathered_alpha, paste_back

        crops, masks = [], []
        for i in range(0, len(codes), self.batch_size):
            out = self.decode_output(codes[i : i + self.batch_size])
            crops.append(to_hwc_uint8(out.recon.cpu()))
            masks.append(out.mask[:, 0].float().cpu().numpy())
        crop_arr, mask_arr = np.concatenate(crops), np.concatenate(masks)
        if not paste:
            return crop_arr, []
        results = []
        for c, crop, mask in zip(codes, crop_arr, mask_arr):
            alpha = feathered_alpha(mask, self.feather)
            image, weight = paste_back(c.face.photo, crop, alpha, c.face.matrix)
            results.append(EditResult(crop, image, weight, mask, c))
        return crop_arr, results

    # -- edits ------------------------------------------------------------------------

    def _swap(
        self, target: Any, source: Any, name: str, role: str, aligned: bool | None
    ) -> EditResult:
        t = self.encode_one(target, "target", aligned)
        s = self.encode_one(source, role, aligned)
        return self.render([t.replace(**{name: getattr(s, name)})])[1][0]

    def transfer_expression(
        self, target: Any, driver: Any, aligned: bool | None = None
    ) -> EditResult:
        """The target's face with the driver's expression code z_exp (Eq. 18)."""
        return self._swap(target, driver, "expression", "driver", aligned)

    def transfer_pose(self, target: Any, driver: Any, aligned: bool | None = None) -> EditResult:
        """The target's face turned to the driver's head rotation SO3(z_p)."""
        return self._swap(target, driver, "rotation", "driver", aligned)

    def relight(self, target: Any, light_source: Any, aligned: bool | None = None) -> EditResult:
        """The target's face under the light z_l of ``light_source``."""
        return self._swap(target, light_source, "light", "light source", aligned)

    def interpolate_codes(
        self, a: FaceCodes, b: FaceCodes, factor: str, steps: int = 11
    ) -> list[FaceCodes]:
        """``a``'s codes with one factor walked linearly to ``b``'s (both ends included).

        ``pose`` walks the rotation matrices; the decoder's SO(3) projection turns each
        blend into a rotation. Every other code stays ``a``'s.

        Args:
            factor: ``expression``, ``identity``, ``pose`` or ``light``.
            steps: frames including both ends (at least 2).

        Raises:
            DataError: an unknown factor or fewer than 2 steps.
        """
        if factor not in FACTORS:
            raise DataError(f"Unknown factor {factor!r}; choose one of {', '.join(FACTORS)}.")
        if steps < 2:
            raise DataError(f"Interpolation needs at least 2 steps, got {steps}.")
        name = FACTORS[factor]
        va, vb = getattr(a, name), getattr(b, name)
        return [a.replace(**{name: torch.lerp(va, vb, float(t))})
                for t in np.linspace(0.0, 1.0, steps)]  # fmt: skip

    def interpolate(
        self, a: Any, b: Any, factor: str, steps: int = 11, aligned: bool | None = None
    ) -> list[EditResult]:
        """Walk one factor of face ``a`` to face ``b``'s (:meth:`interpolate_codes`), decoded."""
        ca = self.encode_one(a, "first face", aligned)
        cb = self.encode_one(b, "second face", aligned)
        return self.render(self.interpolate_codes(ca, cb, factor, steps))[1]

    @torch.inference_mode()
    def reconstruct_3d(self, image: Any, aligned: bool | None = None) -> Mesh:
        """A coloured mesh of the single face of ``image`` (:mod:`facefactors.inference.mesh`)."""
        from facefactors.inference.mesh import meshes_from_output

        c = self.encode_one(image, "image", aligned)
        out = self.decode_output([c])
        return meshes_from_output(
            out.id_pred.cpu(), out.exp_pred.cpu(), out.albedo.cpu(), out.rotation.cpu(),
            [c.face.source],
        )[0]  # fmt: skip


def _rotations(z_p: torch.Tensor) -> torch.Tensor:
    """(B, 9) pose codes → (B, 3, 3) rotations SO3(z_p)."""
    from facefactors.tensorial.ops import project_to_so3

    return project_to_so3(z_p.view(-1, 3, 3))


def _stack(codes: Sequence[FaceCodes]) -> tuple[Codes, PoolState]:
    """Model codes and pooling state of a batch of :class:`FaceCodes`.

    The rotation goes in as z_p: the decoder projects z_p onto SO(3), which leaves a
    rotation as it is.
    """
    from facefactors.tensorial.model import Codes
    from facefactors.tensorial.nets import PoolState

    if not codes:
        raise DataError("There are no faces to decode.")

    def cat(name: str) -> torch.Tensor:
        return torch.stack([getattr(c, name) for c in codes])

    model_codes = Codes(
        z=cat("z"),
        z_b=cat("background"),
        z_m=cat("mask"),
        z_l=cat("light"),
        z_p=cat("rotation").reshape(len(codes), 9),
        z_id=cat("identity"),
        z_exp=cat("expression"),
    )
    n = len(codes[0].state.indices)
    state = PoolState(
        [torch.cat([c.state.indices[j] for c in codes]) for j in range(n)],
        [torch.cat([c.state.skips[j] for c in codes]) for j in range(n)],
    )
    return model_codes, state
