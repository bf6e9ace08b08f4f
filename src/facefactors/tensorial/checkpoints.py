"""Tensorial checkpoints: the training state's tag, ``model.pt``, and the verifier V.

``model.pt`` holds the generator alone (tensorial model or Z_0) with the run
config: what evaluation and face editing load. V of E_veri is a ``backbone.pt``
of ``facefactors pretrain-id``, run at its own input size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facefactors.checkpoint import entry, load_checkpoint, load_weights, positive_int
from facefactors.config import to_dict
from facefactors.errors import CheckpointError, ConfigError
from facefactors.tensorial.config import TensorialConfig, validate
from facefactors.tensorial.model import TensorialModel, Z0AutoEncoder, build_model
from facefactors.training.state import read_training_state

FORMAT = "facefactors.tensorial.train/1"
MODEL_FORMAT = "facefactors.tensorial/1"


class ResizedVerifier(nn.Module):
    """V at its own input size: (B, 3, S, S) in [-1, 1] → (B, D) embeddings."""

    def __init__(self, net: nn.Module, input_size: int) -> None:
        super().__init__()
        self.net, self.input_size = net, input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        return self.net(x)


def load_verifier(path: str | Path) -> ResizedVerifier:
    """V from a ``backbone.pt`` of ``facefactors pretrain-id`` (its arch and sizes inside).

    Raises:
        CheckpointError: unreadable, or not a pretrain-id backbone.
    """
    from facefactors.nets import create_backbone

    state = load_checkpoint(path)
    if "arch" not in state or "config" not in state:
        raise CheckpointError(
            f"Verifier checkpoint {path} is not a backbone.pt of facefactors pretrain-id."
        )
    size = positive_int(state, "config.input_size", path)
    dim = state["config"].get("embedding_dim") if isinstance(state["config"], dict) else None
    net = create_backbone(
        entry(state, "arch", path, str),
        width=positive_int(state, "config.width", path),
        input_size=size,
        embedding_dim=None if dim is None else positive_int(state, "config.embedding_dim", path),
        checkpoint=path,
    )
    return ResizedVerifier(net, size).eval()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A tensorial training checkpoint as a dict.

    Raises:
        CheckpointError: missing, truncated, or written by another trainer.
    """
    return read_training_state(path, FORMAT, "a tensorial training checkpoint")


def model_state(generator: nn.Module, cfg: TensorialConfig) -> dict[str, Any]:
    """The ``model.pt`` dict: the generator's weights and the run config."""
    weights = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    return {"format": MODEL_FORMAT, "config": to_dict(cfg), "generator": weights}


def load_generator(path: str | Path) -> tuple[TensorialModel | Z0AutoEncoder, TensorialConfig]:
    """The generator of a ``model.pt`` (or a training ``last.pt``) and its config, in eval mode.

    Raises:
        CheckpointError: not a tensorial model, or weights that do not fit.
    """
    from facefactors.config import from_dict

    state = load_checkpoint(path)
    if state.get("format") == FORMAT:
        weights = {k[len("generator.") :]: v for k, v in entry(state, "model", path, dict).items()
                   if str(k).startswith("generator.")}  # fmt: skip
    elif state.get("format") == MODEL_FORMAT:
        weights = entry(state, "generator", path, dict)
    else:
        raise CheckpointError(f"Checkpoint {path} is not a tensorial model (model.pt or last.pt).")
    saved = dict(entry(state, "config", path, dict))
    # The generator needs no verifier: a run moved or opened from another folder (its
    # verifier path relative to where it trained) still loads. The path is kept as saved.
    verifier = saved.pop("verifier_checkpoint", None)
    try:
        cfg = validate(from_dict(TensorialConfig, saved))
        cfg.verifier_checkpoint = verifier
    except ConfigError as exc:
        raise CheckpointError(
            f"Checkpoint {path} holds a config that does not load: {exc}"
        ) from None
    generator = build_model(cfg.model).generator
    load_weights(generator, weights, path, "the generator its own config describes")
    return generator.eval(), cfg
