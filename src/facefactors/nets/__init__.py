"""Backbones: torchvision-layout ResNet-18 and insightface-layout IResNet-18/34/50.

Every backbone exposes ``forward_features(x) -> (B, C, h, w)``, ``forward(x) ->
(B, num_features)`` and the ``num_features`` attribute. Build one with
:func:`create_backbone`, optionally loading a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from facefactors.errors import ConfigError
from facefactors.nets.iresnet import IResNet, iresnet
from facefactors.nets.loading import LoadReport, load_backbone_weights
from facefactors.nets.resnet import ResNet, resnet18


def _build_resnet18(width: int, input_size: int, embedding_dim: int, dropout: float) -> nn.Module:
    # The torchvision layout has no projection layer: the embedding is the pooled
    # last stage, so its size is fixed by the width (keys must stay torchvision's).
    if embedding_dim != 8 * width:
        raise ConfigError(
            f"Backbone 'resnet18' at width {width} has a {8 * width}-d embedding; "
            f"embedding_dim={embedding_dim} needs width={embedding_dim // 8} or an iresnet."
        )
    return resnet18(width=width)


def _build_resnet18_fc(
    width: int, input_size: int, embedding_dim: int, dropout: float
) -> nn.Module:
    # torchvision keys plus a face-recognition head (BN–FC–BN): signed embeddings.
    return resnet18(width, "bn_fc_bn", input_size, embedding_dim)


def _iresnet_builder(name: str) -> Callable[[int, int, int, float], nn.Module]:
    def build(width: int, input_size: int, embedding_dim: int, dropout: float) -> nn.Module:
        return iresnet(name, width, input_size, embedding_dim, dropout)

    return build


BACKBONES: dict[str, Callable[[int, int, int, float], nn.Module]] = {
    "resnet18": _build_resnet18,
    "resnet18_fc": _build_resnet18_fc,
    "iresnet18": _iresnet_builder("iresnet18"),
    "iresnet34": _iresnet_builder("iresnet34"),
    "iresnet50": _iresnet_builder("iresnet50"),
}


def backbone_names() -> list[str]:
    """Names accepted by :func:`create_backbone`."""
    return list(BACKBONES)


def create_backbone(
    name: str,
    *,
    width: int = 64,
    input_size: int = 112,
    embedding_dim: int | None = None,
    dropout: float = 0.0,
    checkpoint: str | Path | dict | None = None,
    pretrained_strict: bool = True,
) -> nn.Module:
    """Build a backbone by name and optionally load weights into it.

    Args:
        name: ``resnet18`` (pooled, non-negative embedding), ``resnet18_fc`` (the same
            trunk with a BN–FC–BN face-recognition head: signed), ``iresnet18``,
            ``iresnet34`` or ``iresnet50``.
        width: channels of the first stage (64 = the standard networks).
        input_size: square input size (112 or 64; sizes the IResNet ``fc``).
        embedding_dim: embedding size; None means ``8 * width`` (512 at width 64).
            For ``resnet18`` it must equal ``8 * width``.
        dropout: IResNet dropout before ``fc`` (ignored by ``resnet18``).
        checkpoint: a ``.pt``/``.pth``/``.safetensors`` file or a state dict, e.g.
            the ``backbone.pt`` written by ``facefactors pretrain-id``.
        pretrained_strict: raise on any missing/unexpected/mis-shaped key.

    Returns:
        The backbone (train mode). ``model(x)`` maps (B, 3, input_size,
        input_size) to (B, model.num_features).

    Raises:
        ConfigError: unknown name or inconsistent sizes.
        CheckpointError: the checkpoint is unreadable or does not match.
    """
    if name not in BACKBONES:
        raise ConfigError(f"Unknown backbone '{name}'; valid names: {', '.join(BACKBONES)}.")
    if width < 1 or input_size < 16:
        raise ConfigError(
            f"Backbone '{name}' needs width >= 1 and input_size >= 16, got {width} and {input_size}."
        )
    dim = 8 * width if embedding_dim is None else embedding_dim
    model = BACKBONES[name](width, input_size, dim, dropout)
    if checkpoint is not None:
        load_backbone_weights(model, checkpoint, strict=pretrained_strict, expected_arch=name)
    return model


__all__ = [
    "BACKBONES",
    "IResNet",
    "LoadReport",
    "ResNet",
    "backbone_names",
    "create_backbone",
    "load_backbone_weights",
    "resnet18",
    "iresnet",
]
