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

from facefactors.checkpoint import load_checkpoint
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
        b = state["backbone"]
        backbone = create_backbone(
            b["name"],
            width=b["width"],
            input_size=b["input_size"],
            embedding_dim=b["embedding_dim"],
        )
        head = nn.Linear(b["embedding_dim"], len(state["classes"]))
        try:
            backbone.load_state_dict(state["e_exp"])
            head.load_state_dict(state["c_exp"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{source} does not fit its own backbone description: {first}."
            ) from None
        return cls(backbone, head, state["classes"], b["input_size"]).eval()


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
        state = _from_training_state(state)
    return ExpressionClassifier.from_state(state, source=f"Checkpoint {path}")


def _from_training_state(state: dict[str, Any]) -> dict[str, Any]:
    """The E_exp + C_exp part of a training checkpoint, in the export format."""
    cfg = state["config"]
    weights = state["model"]

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}

    c_exp = part("c_exp.")
    return {
        "format": FORMAT,
        "classes": list(state["classes"]),
        "backbone": {
            "name": cfg["model"]["backbone"],
            "width": cfg["model"]["width"],
            "embedding_dim": int(c_exp["weight"].shape[1]),
            "input_size": cfg["data"]["size"],
        },
        "normalization": dict(NORMALIZATION),
        "e_exp": part("e_exp."),
        "c_exp": c_exp,
        "config": cfg,
    }
