"""The exported expression model: E_exp followed by C_exp, and nothing else.

This is what a trained recogniser *is* at inference time (paper §3.2, §4.3), for
every method that has one: :class:`ExpressionClassifier` rebuilds the network from
an export dict (``facefactors.expression/1``, written by
:func:`facefactors.ipd.export.inference_state`) or from an IPD-FER training
checkpoint, without building E_id, E_pose, D or the decoder.
:func:`load_expression_model` also opens ``.onnx`` files
(:mod:`facefactors.export.runtime`). Nothing here imports a method package.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from facefactors.checkpoint import entry, load_checkpoint, load_weights, positive_int
from facefactors.errors import CheckpointError

if TYPE_CHECKING:
    from facefactors.export.runtime import OnnxExpressionClassifier

FORMAT = "facefactors.expression/1"

# An IPD-FER training checkpoint (facefactors.ipd.train) holds E_exp and C_exp
# under these prefixes; reading them needs the tag and the key layout only.
IPD_TRAIN_FORMAT = "facefactors.ipd.train/1"

# Pixels are RGB, (x/255 - 0.5)/0.5, 5-point aligned (DESIGN §5).
NORMALIZATION = {"mean": 0.5, "std": 0.5, "color": "RGB"}


class ExpressionClassifier(nn.Module):
    """E_exp followed by C_exp: (B, 3, S, S) in [-1, 1] → (B, K) logits.

    Args:
        backbone: E_exp.
        head: C_exp.
        classes: class names in logit order.
        input_size: S.
    """

    def __init__(
        self, backbone: nn.Module, head: nn.Linear, classes: list[str], input_size: int
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.classes = list(classes)
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → (B, K) logits."""
        return self.head(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f_exp: (B, 3, S, S) → (B, D)."""
        return self.backbone(x)

    @classmethod
    def from_state(
        cls, state: dict[str, Any], source: str = "the checkpoint"
    ) -> ExpressionClassifier:
        """Rebuild from :func:`inference_state` output.

        Raises:
            CheckpointError: the dict is not an expression-model export or does not fit.
        """
        from facefactors.nets import create_backbone

        if state.get("format") != FORMAT:
            raise CheckpointError(f"{source} is not a facefactors expression-model export.")
        classes = class_names(state, source)
        dim = positive_int(state, "backbone.embedding_dim", source)
        size = positive_int(state, "backbone.input_size", source)
        backbone = create_backbone(
            entry(state, "backbone.name", source, str),
            width=positive_int(state, "backbone.width", source),
            input_size=size,
            embedding_dim=dim,
        )
        head = nn.Linear(dim, len(classes))
        load_weights(backbone, entry(state, "e_exp", source, dict), source, "E_exp")
        load_weights(head, entry(state, "c_exp", source, dict), source, "C_exp")
        return cls(backbone, head, classes, size).eval()


def load_expression_model(path: str | Path) -> ExpressionClassifier | OnnxExpressionClassifier:
    """Load E_exp + C_exp from a ``model.pt`` export, a training ``last.pt`` or a ``.onnx`` file.

    A path ending in ``.onnx`` (an fp32 or int8 file of ``facefactors export``)
    opens an onnxruntime CPU session: an
    :class:`~facefactors.export.runtime.OnnxExpressionClassifier` with the same
    ``classes``, ``input_size`` and ``forward`` (logits), but no ``features`` and
    no device but the CPU. onnxruntime is only imported for such a path.

    Raises:
        CheckpointError: unreadable, truncated or of another kind.
        FaceFactorsError: a ``.onnx`` path without onnx/onnxruntime installed.
    """
    if Path(path).suffix.lower() == ".onnx":
        from facefactors.export.runtime import load_onnx_classifier

        return load_onnx_classifier(path)
    state = load_checkpoint(path)
    if state.get("format") == IPD_TRAIN_FORMAT:
        state = _from_training_state(state, path)
    return ExpressionClassifier.from_state(state, source=f"Checkpoint {path}")


def class_names(state: dict[str, Any], where: str | Path) -> list[str]:
    """The ``classes`` entry: a non-empty list of class names.

    Raises:
        CheckpointError: missing, empty, or holding something other than strings.
    """
    classes = entry(state, "classes", where, (list, tuple))
    if not classes or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"Checkpoint {where} entry 'classes' must list class names.")
    return list(classes)


def _from_training_state(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The E_exp + C_exp part of a training checkpoint, in the export format."""
    weights = entry(state, "model", path, dict)

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in weights.items() if str(k).startswith(prefix)}

    c_exp = part("c_exp.")
    head = c_exp.get("weight")
    if not isinstance(head, torch.Tensor) or head.ndim != 2:
        raise CheckpointError(f"Checkpoint {path} lacks the C_exp weight model.c_exp.weight.")
    cfg = entry(state, "config", path, dict)
    return {
        "format": FORMAT,
        "classes": class_names(state, path),
        "backbone": {
            "name": entry(state, "config.model.backbone", path, str),
            "width": entry(state, "config.model.width", path, int),
            "embedding_dim": int(head.shape[1]),
            "input_size": entry(state, "config.data.size", path, int),
        },
        "normalization": dict(NORMALIZATION),
        "e_exp": part("e_exp."),
        "c_exp": c_exp,
        "config": cfg,
    }
