"""Margin-based softmax heads for face recognition: ArcFace and CosFace.

Both heads score an embedding against one learned unit vector per identity,
``cos θ_j = <e/|e|, w_j/|w_j|>``, then penalise the true class ``y`` before a
scaled softmax:

- ArcFace (additive angular margin): ``s · cos(θ_y + m)``;
- CosFace (additive cosine margin):  ``s · (cos θ_y − m)``.

The margin arithmetic lives in pure functions so it can be checked by hand.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

# Keep cos strictly inside (-1, 1): d/dc sqrt(1 - c²) is infinite at |c| = 1.
_COS_EPS = 1e-7


def arcface_logits(
    cos: torch.Tensor, labels: torch.Tensor, s: float = 64.0, m: float = 0.5
) -> torch.Tensor:
    """ArcFace logits from cosines.

    ``cos(θ + m)`` is computed as ``cos θ cos m − sin θ sin m``. It stops being
    monotonic in θ once ``θ + m > π``; there the standard fallback
    ``cos θ − m · sin m`` (a CosFace-like penalty) keeps the target logit
    decreasing in θ, so a badly misclassified sample still gets a useful gradient.

    Args:
        cos: (B, K) cosine similarities in [-1, 1].
        labels: (B,) int64 true classes in [0, K).
        s: scale applied to every logit.
        m: additive angular margin in radians.

    Returns:
        (B, K) float32 logits; only the true class of each row is penalised.
    """
    cos = cos.float().clamp(-1.0 + _COS_EPS, 1.0 - _COS_EPS)
    target = cos.gather(1, labels[:, None])
    sin = torch.sqrt(1.0 - target * target)
    with_margin = target * math.cos(m) - sin * math.sin(m)
    # θ + m > π  ⇔  θ > π − m  ⇔  cos θ < cos(π − m).
    fallback = target - m * math.sin(m)
    with_margin = torch.where(target > math.cos(math.pi - m), with_margin, fallback)
    return s * cos.scatter(1, labels[:, None], with_margin)


def cosface_logits(
    cos: torch.Tensor, labels: torch.Tensor, s: float = 64.0, m: float = 0.35
) -> torch.Tensor:
    """CosFace logits: ``s · (cos θ_y − m)`` for the true class, ``s · cos θ_j`` otherwise.

    Args:
        cos: (B, K) cosine similarities.
        labels: (B,) int64 true classes.
        s: scale.
        m: additive cosine margin.

    Returns:
        (B, K) float32 logits.
    """
    cos = cos.float()
    target = cos.gather(1, labels[:, None]) - m
    return s * cos.scatter(1, labels[:, None], target)


MARGINS = {"arcface": arcface_logits, "cosface": cosface_logits}


class MarginHead(nn.Module):
    """Identity classifier with a margin penalty, used only during pretraining.

    Args:
        embedding_dim: size D of the backbone embedding.
        num_classes: number of training identities K.
        kind: ``"arcface"`` or ``"cosface"``.
        s: logit scale.
        m: margin (radians for ArcFace, cosine units for CosFace).
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        kind: Literal["arcface", "cosface"] = "arcface",
        s: float = 64.0,
        m: float = 0.5,
    ) -> None:
        super().__init__()
        self.kind, self.s, self.m = kind, s, m
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)

    def cosines(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings → (B, K) cosines with every class centre (float32)."""
        return F.normalize(emb.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).t()

    def margin(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, K) cosines and (B,) labels → (B, K) margin logits."""
        return MARGINS[self.kind](cos, labels, self.s, self.m)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings and (B,) labels → (B, K) margin logits for cross-entropy."""
        return self.margin(self.cosines(emb), labels)
