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

from facefactors.checkpoint import load_checkpoint
from facefactors.config import to_dict
from facefactors.errors import CheckpointError
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
    c = state["config"]
    net = create_backbone(
        state["arch"],
        width=c["width"],
        input_size=c["input_size"],
        embedding_dim=c.get("embedding_dim"),
        checkpoint=path,
    )
    return ResizedVerifier(net, c["input_size"]).eval()


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
        weights = {k[len("generator.") :]: v for k, v in state["model"].items()
                   if k.startswith("generator.")}  # fmt: skip
    elif state.get("format") == MODEL_FORMAT:
        weights = state["generator"]
    else:
        raise CheckpointError(f"Checkpoint {path} is not a tensorial model (model.pt or last.pt).")
    cfg = validate(from_dict(TensorialConfig, state["config"]))
    generator = build_model(cfg.model).generator
    try:
        generator.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"Checkpoint {path} does not fit its own config: {first}.") from None
    return generator.eval(), cfg
