"""Image grids like the paper's Figs. 8–9: one face per row, one composition per column.

Columns: real | G_dec(f_id) | G_dec(f_id + f_pose) | G_dec(f_id + f_pose + f_exp),
then, when the data carry them (synthetic faces), the true ``neutral`` and
``frontal_neutral`` images. Without E_pose the f_id + f_pose column is left out.
"""

from __future__ import annotations

import numpy as np
import torch

from facefactors.ipd.model import IPDModel
from facefactors.training.run import tile


@torch.no_grad()
def sample_grid(
    model: IPDModel, x: torch.Tensor, extras: list[torch.Tensor] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Decode the factor compositions of ``x`` and tile them.

    Args:
        model: a model with a decoder (``id`` or ``ipd`` variant).
        x: (N, 3, H, W) real images on the model's device.
        extras: more (N, 3, H, W) columns to append (e.g. true neutral faces).

    Returns:
        The (rows, cols, 3) uint8 grid and the column names.
    """
    was = model.training
    model.eval()
    try:
        fakes = model.generate(x)
    finally:
        model.train(was)
    names = ["real", "id"] + (["id+pose"] if model.e_pose is not None else []) + ["id+pose+exp"]
    keys = ["id"] + (["ip"] if model.e_pose is not None else []) + ["ipe"]
    columns = [x] + [fakes[k] for k in keys] + list(extras or [])
    return tile([c.float().cpu() for c in columns]), names
