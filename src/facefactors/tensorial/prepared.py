"""Tensorial training faces from a prepared folder with fitted pseudo ground truth.

``data.source: prepared`` reads ``data.root``, a folder of ``facefactors prepare``
on which ``facefactors fit3d`` has run. Every aligned face with a fit becomes one
row of a :class:`~facefactors.tensorial.data.FaceTable` holding the image and the
fitted :data:`~facefactors.tensorial.batch.PSEUDO_GT` (no exact value of any kind
reaches the trainer). Faces without a fit are counted and reported on stderr.

Splits: the folder's ``test`` split is never trained on. Validation is the
folder's ``val`` split when it has one; otherwise every ``data.val_every``-th
subject (sorted ids) of the training faces, held out whole; only when some faces
have no subject id, every ``val_every``-th image (said on stderr).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from facefactors.data.records import Sample
from facefactors.errors import DataError
from facefactors.tensorial.batch import PSEUDO_GT
from facefactors.tensorial.config import TensorialConfig
from facefactors.tensorial.table import FaceTable, TensorialData


def resample_maps(row: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """The fit's mask and normal maps at ``size`` (area filter; normals renormalised).

    Args:
        row: one face's fields, ``normals`` (3, S, S) and ``mask`` (1, S, S).
    """
    if row["mask"].shape[-1] == size:
        return row
    mask = F.interpolate(row["mask"][None], size=size, mode="area")[0]
    nrm = F.interpolate(row["normals"][None], size=size, mode="area")[0]
    length = nrm.norm(dim=0, keepdim=True)
    nrm = torch.where(length > 1e-3, nrm / length.clamp_min(1e-3), torch.zeros_like(nrm))
    return {**row, "mask": mask, "normals": nrm}


def split_samples(samples: list[Sample], val_every: int) -> tuple[list[Sample], list[Sample], str]:
    """``(train, val, how)``: the module docstring's rule."""
    from facefactors.data.subjects import hold_out_subjects

    pool = [s for s in samples if s.split != "test"]
    val = [s for s in pool if s.split == "val"]
    if val:
        return [s for s in pool if s.split != "val"], val, "the folder's val split"
    if all(s.subject is not None for s in pool):
        train, val = hold_out_subjects(pool, val_every)
        return train, val, f"every {val_every}th subject, held out whole"
    train = [s for i, s in enumerate(pool) if (i + 1) % val_every]
    return train, pool[val_every - 1 :: val_every], f"every {val_every}th image"


def _table(
    samples: list[Sample], folder: Path, fits: dict, size: int
) -> tuple[FaceTable | None, int]:
    """Rows of the samples that have a fit, and how many had none."""
    from facefactors.data.io import load_image_rgb, to_tensor

    rows, missing = [], 0
    for s in samples:
        fit = fits.get(os.path.relpath(str(s.path), str(folder)))
        if fit is None:
            missing += 1
            continue
        image = to_tensor(load_image_rgb(s.path), size)
        rows.append({"image": image, **resample_maps(fit, size)})
    if not rows:
        return None, missing
    keys = ("image", *PSEUDO_GT)
    return FaceTable({k: torch.stack([r[k] for r in rows]) for k in keys}), missing


def prepared_data(cfg: TensorialConfig) -> TensorialData:
    """Training and validation tables of ``cfg.data.root``.

    Raises:
        DataError: no fit in the folder, or a split with no fitted face (naming it).
    """
    from facefactors.data.prepared import load_prepared
    from facefactors.fit3d.store import load_fits

    folder = Path(cfg.data.root).expanduser()
    index = load_prepared(folder)
    fits, _manifest = load_fits(folder)
    train_s, val_s, how = split_samples(list(index.samples), cfg.data.val_every)
    size = cfg.model.image_size
    train, miss_t = _table(train_s, folder, fits, size)
    val, miss_v = _table(val_s, folder, fits, size)
    for name, table in (("training", train), ("validation", val)):
        if table is None:
            raise DataError(
                f"Prepared folder {folder} has no fitted {name} face (validation: {how}; "
                f"config key 'data.val_every')."
            )
    print(
        f"tensorial data: {len(train)} training and {len(val)} validation faces from {folder} "
        f"(validation: {how}); {miss_t + miss_v} faces without a fit left out.",
        file=sys.stderr,
    )
    return TensorialData(train, val)
