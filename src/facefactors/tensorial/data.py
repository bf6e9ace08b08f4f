"""Training and validation faces of the tensorial model, with their pseudo ground truth.

Synthetic faces carry every pseudo ground truth of §3.6 exactly: the rotation,
identity and expression coefficients, the (unposed) vertices, normals, SH light
and mask. They are rendered once with their maps and kept in memory (rendering
costs more than a training step of the quick model); validation identities are
the last ``synth_val_identities`` training identities, never trained on.
"""

from __future__ import annotations

import sys

import torch
from torch.utils.data import Dataset

from facefactors.tensorial.config import TensorialConfig
from facefactors.tensorial.table import FaceTable, TensorialData  # noqa: F401 - re-exported

# What a rendered face keeps: the input, its pseudo ground truth (tensorial.batch)
# and the labels the evaluation reads.
KEYS = (
    "image", "mask", "normals", "sh", "vertices", "rotation", "id_coeffs", "exp_coeffs",
    "yaw", "pitch", "roll", "expression", "identity", "pose_bin",
)  # fmt: skip


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack item dicts into batch tensors."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def render_table(faces: Dataset, chunk: int = 64) -> FaceTable:
    """Render every face of a ``SynthFaces`` with its maps, keeping :data:`KEYS`."""
    from tqdm.auto import tqdm

    parts: dict[str, list[torch.Tensor]] = {k: [] for k in KEYS}
    starts = range(0, len(faces), chunk)
    for start in tqdm(starts, desc="render synth", disable=not sys.stderr.isatty()):
        b = faces.batch(list(range(start, min(start + chunk, len(faces)))))
        for k in KEYS:
            parts[k].append(b[k])
    return FaceTable({k: torch.cat(v) for k, v in parts.items()})


def build_data(cfg: TensorialConfig) -> TensorialData:
    """Render the training identities (the last ``synth_val_identities`` validate), or
    read a prepared folder with its fitted pseudo ground truth (``data.source``)."""
    if cfg.data.source == "prepared":
        from facefactors.tensorial.prepared import prepared_data

        return prepared_data(cfg)
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.sampling import SynthConfig

    d = cfg.data
    faces = SynthFaces(
        split="train",
        identities=d.synth_identities,
        per_identity=d.synth_per_identity,
        size=cfg.model.image_size,
        seed=d.synth_seed,
        config=SynthConfig(
            expression_intensity=tuple(d.synth_intensity), classes=tuple(d.synth_classes)
        ),
    )
    table = render_table(faces)
    first_val = (d.synth_identities - d.synth_val_identities) * d.synth_per_identity
    return TensorialData(table.rows(range(first_val)), table.rows(range(first_val, len(table))))
