"""Checks before an IPD-FER run trains: what would make its result meaningless, said loudly."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from facefactors.ipd.config import IPDConfig, neutral_index
from facefactors.ipd.data import DataBundle
from facefactors.ipd.model import IPDModel
from facefactors.training.budget import budget_warning

RANDOM_E_ID_WARNING = (
    "WARNING: model.id_checkpoint is null, so the encoders start from random weights and "
    "E_id (where the variant has one) stays a frozen random network, which carries no "
    "identity. That is almost never what you want: run `facefactors pretrain-id` and pass "
    "--set model.id_checkpoint=PATH/backbone.pt."
)


def warn_random_identity_encoder(cfg: IPDConfig) -> bool:
    """Warn loudly (stderr and the warnings module) when no face-recognition weights are set."""
    if cfg.model.id_checkpoint or cfg.model.init_checkpoint:
        return False
    print(RANDOM_E_ID_WARNING, file=sys.stderr, flush=True)
    warnings.warn(RANDOM_E_ID_WARNING, UserWarning, stacklevel=3)
    return True


def data_warnings(
    cfg: IPDConfig, model: IPDModel, data: DataBundle, total: int, steps: int, out: Path
) -> list[str]:
    """Warnings before training: a short budget, and neutral references the data lack."""
    out_msgs = []
    short = budget_warning(total, cfg.train.epochs, steps, f"Run {out}")
    if short:
        out_msgs.append(short)
    uses_neutral = cfg.loss.active("recon") or cfg.loss.active("fneu")
    if model.dec is not None and uses_neutral and data.neutral_images == 0:
        c = neutral_index(list(data.classes))
        role = "a class" if c < len(data.classes) else "D's extra output, not a class"
        out_msgs.append(
            f"The classes ({', '.join(data.classes)}) need neutral images (label {c}, {role}) "
            "for L_recon's neutral term and as references of L_fneu, and the training split "
            "has none, so the neutral generator learns nothing from real neutral faces; add "
            "neutral images (CK+'s first frames, a 'neutral' class folder) or use "
            "model.variant=baseline."
        )
    return out_msgs
