"""The IPD-FER networks (paper §3, Fig. 2; DESIGN §6).

    x ──E_id (frozen)──► f_id ─────────┐
    x ──E_pose──► f_pose ──► C_p        ├─ f_{i-p}   = f_id + f_pose        ──G_dec──► x̂_{i-p}
    x ──E_exp───► f_exp  ──► C_exp      └─ f_{i-p-e} = f_{i-p} + f_exp     ──G_dec──► x̂_{i-p-e}
    x, x̂ ──D──► expression logits (K, or K+1 with an extra neutral output)

E_id doubles as N, the identity network of L_id. It is frozen: its parameters
never require grad and it stays in eval mode whatever ``train()`` is called
with, so its BatchNorm statistics never move. Only E_exp + C_exp are used for
inference. Variants drop parts: ``id`` has no E_pose/C_p (f_{i-p} := f_id),
``baseline`` is E_exp + C_exp alone.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from facefactors.errors import ConfigError
from facefactors.ipd.config import SEVEN_CLASSES, IPDConfig, ModelConfig, neutral_index
from facefactors.ipd.decoder import Decoder


class Features(NamedTuple):
    """Per-image factor features, each (B, D); absent factors are None."""

    f_id: torch.Tensor | None
    f_pose: torch.Tensor | None
    f_exp: torch.Tensor


class Discriminator(nn.Module):
    """D: a backbone and a linear expression head.

    Args:
        backbone: maps (B, 3, H, W) to (B, D).
        outputs: K, or K+1 when the class set has no neutral (the extra neutral output).
    """

    def __init__(self, backbone: nn.Module, outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B, outputs) logits."""
        return self.head(self.backbone(x))


class IPDModel(nn.Module):
    """All IPD-FER components for one variant.

    Args:
        cfg: the model section of the config.
        input_size: image size (112 or 64).
        discriminator: build D (False for the Table 9 "no D" ablation).

    Attributes:
        classes: expression class names, the output order of C_exp.
        neutral_index: c, the neutral label (``len(classes)`` when it is D's extra output).
        e_id, e_pose, dec, d, c_p: None where the variant has no such component.
    """

    def __init__(self, cfg: ModelConfig, input_size: int, discriminator: bool = True) -> None:
        super().__init__()
        from facefactors.nets import create_backbone  # heavy import kept out of module load

        self.config = cfg
        self.variant = cfg.variant
        # No class list yet (not resolved from a dataset): the seven basic expressions.
        self.classes = list(cfg.classes) if cfg.classes is not None else list(SEVEN_CLASSES)
        self.neutral_index = neutral_index(self.classes)
        self.input_size = input_size
        k = len(self.classes)

        def backbone() -> nn.Module:
            # Every encoder and D start from the same face-recognition weights (§4.2).
            return create_backbone(
                cfg.backbone,
                width=cfg.width,
                input_size=input_size,
                embedding_dim=cfg.embedding_dim,
                checkpoint=cfg.id_checkpoint,
            )

        self.e_exp = backbone()
        dim = self.e_exp.num_features
        self.feature_dim = dim
        self.c_exp = nn.Linear(dim, k)
        self.e_id: nn.Module | None = None
        self.e_pose: nn.Module | None = None
        self.c_p: nn.Linear | None = None
        self.dec: Decoder | None = None
        self.d: Discriminator | None = None
        if cfg.variant == "baseline":
            return
        self.e_id = backbone()
        if self.e_id.num_features != dim:  # f_id + f_exp needs equal sizes
            raise ConfigError(
                f"E_id gives {self.e_id.num_features}-d features but E_exp gives {dim}-d; "
                "model.embedding_dim must make them equal."
            )
        self.e_id.requires_grad_(False)
        self.e_id.eval()
        self.dec = Decoder(
            dim, input_size, cfg.decoder_channels, cfg.decoder_start_norm, cfg.decoder_norm,
            colour_grid=cfg.decoder_colour_grid,
        )  # fmt: skip
        if discriminator:
            # D has an extra neutral output when neutral is not one of the K classes (CK+ 7).
            self.d = Discriminator(backbone(), k + int(self.neutral_index == k))
        if cfg.variant == "ipd":
            self.e_pose = backbone()
            self.c_p = nn.Linear(dim, cfg.pose_bins)

    def train(self, mode: bool = True) -> IPDModel:
        """Set train/eval mode everywhere except E_id, which always stays in eval."""
        super().train(mode)
        if self.e_id is not None:
            self.e_id.eval()
        return self

    def identity(self, x: torch.Tensor) -> torch.Tensor:
        """N(x) = E_id(x): (B, 3, H, W) → (B, D). Gradients may flow to ``x``, never to E_id."""
        return self.e_id(x)

    def encode(self, x: torch.Tensor) -> Features:
        """(B, 3, H, W) → Features(f_id, f_pose, f_exp), each (B, D) or None."""
        f_id = self.e_id(x) if self.e_id is not None else None
        f_pose = self.e_pose(x) if self.e_pose is not None else None
        return Features(f_id, f_pose, self.e_exp(x))

    @staticmethod
    def combine(f: Features) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_{i-p}, f_{i-p-e}) = (f_id + f_pose, f_id + f_pose + f_exp); f_pose=None means 0."""
        f_ip = f.f_id if f.f_pose is None else f.f_id + f.f_pose
        return f_ip, f_ip + f.f_exp

    def generate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Decode the three compositions used in the paper's Figs. 8–9.

        Returns:
            ``id``: G_dec(f_id); ``ip``: G_dec(f_id + f_pose); ``ipe``: G_dec(f_id + f_pose +
            f_exp); each (B, 3, H, W) in [-1, 1]. ``ip`` equals ``id`` without E_pose.
        """
        if self.dec is None:
            raise ConfigError("The baseline variant has no decoder to generate images with.")
        f = self.encode(x)
        f_ip, f_ipe = self.combine(f)
        b = x.shape[0]
        if f.f_pose is None:
            out = self.dec(torch.cat([f_ip, f_ipe]))
            return {"id": out[:b], "ip": out[:b], "ipe": out[b:]}
        out = self.dec(torch.cat([f.f_id, f_ip, f_ipe]))  # one decoder call for all three
        return {"id": out[:b], "ip": out[b : 2 * b], "ipe": out[2 * b :]}

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """C_exp(E_exp(x)): (B, 3, H, W) → (B, K) logits; the inference path."""
        return self.c_exp(self.e_exp(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`classify`."""
        return self.classify(x)


def build_model(cfg: IPDConfig) -> IPDModel:
    """The model for a full run config (input size from ``data.size``)."""
    return IPDModel(cfg.model, cfg.data.size, discriminator=cfg.loss.use_discriminator)
