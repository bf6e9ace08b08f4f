"""Start a run from an earlier run's weights (``model.init_checkpoint``).

The paper fine-tunes its SFEW 2.0 model from the RAF-DB one (§4.3). Either file
of a finished run works: ``checkpoints/last.pt`` gives every network the two
models share (E_id, E_pose, C_p, E_exp, C_exp, G_dec, D), ``model.pt`` gives
E_exp and C_exp. Optimiser state is not carried over: training starts afresh
at ``train.lr``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from facefactors.checkpoint import entry, load_checkpoint
from facefactors.errors import CheckpointError, ConfigError
from facefactors.export.classifier import FORMAT as EXPORT_FORMAT
from facefactors.export.classifier import IPD_TRAIN_FORMAT as TRAIN_FORMAT
from facefactors.export.classifier import class_names
from facefactors.ipd.model import IPDModel

KEY = "model.init_checkpoint"


def init_weights(state: dict, where: str = "it") -> tuple[list[str], dict[str, torch.Tensor]]:
    """Class names and a model state dict (``IPDModel`` key names) from a checkpoint dict.

    Raises:
        CheckpointError: the dict is neither a training checkpoint nor an export, or
            lacks an entry (named).
    """
    fmt = state.get("format")
    if fmt in (TRAIN_FORMAT, EXPORT_FORMAT):
        classes = class_names(state, where)
    if fmt == TRAIN_FORMAT:
        return classes, dict(entry(state, "model", where, dict))
    if fmt == EXPORT_FORMAT:
        weights = {f"e_exp.{k}": v for k, v in entry(state, "e_exp", where, dict).items()}
        weights |= {f"c_exp.{k}": v for k, v in entry(state, "c_exp", where, dict).items()}
        return classes, weights
    raise CheckpointError(f"format {fmt!r} is neither an IPD-FER training checkpoint nor an export")


def load_init_checkpoint(model: IPDModel, path: str | Path) -> list[str]:
    """Copy the weights of ``path`` into ``model`` (in place), network by network.

    Every tensor of the checkpoint whose name exists in ``model`` is copied; the
    ones this variant lacks (a ``baseline`` started from an ``ipd`` run has no
    decoder) are skipped. A tensor of another shape is an error: the runs differ
    in width or size, and copying a part would be silently wrong.

    Returns:
        The names of the model's networks that received weights, e.g. ``["c_exp", "e_exp"]``.

    Raises:
        ConfigError: other classes than the model's (naming ``model.init_checkpoint``).
        CheckpointError: unreadable file, another format, or mismatched shapes.
    """
    try:
        classes, weights = init_weights(load_checkpoint(path), str(path))
    except CheckpointError as exc:
        raise CheckpointError(f"Config key '{KEY}' ({path}): {exc}".rstrip(".") + ".") from None
    if classes != list(model.classes):
        raise ConfigError(
            f"Config key '{KEY}' ({path}) was trained on classes {', '.join(classes)}, "
            f"not this dataset's {', '.join(model.classes)}."
        )
    own = model.state_dict()
    shared = {k: v for k, v in weights.items() if k in own}
    for name, tensor in shared.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"Config key '{KEY}' ({path}) holds {name}, which is no tensor.")
        if tensor.shape != own[name].shape:
            raise CheckpointError(
                f"Config key '{KEY}' ({path}) holds {name} of shape {tuple(tensor.shape)}, "
                f"but this model's is {tuple(own[name].shape)} (another width or image size?)."
            )
    if not shared:
        raise CheckpointError(f"Config key '{KEY}' ({path}) shares no weights with this model.")
    model.load_state_dict(shared, strict=False)
    return sorted({k.split(".", 1)[0] for k in shared})
