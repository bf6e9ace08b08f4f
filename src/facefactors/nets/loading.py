"""Load face-recognition checkpoints into the backbones, strictly and clearly.

Checkpoints in the wild come in many wrappers: a bare state dict, a dict with
``state_dict`` / ``model`` / ``backbone``, keys prefixed by ``module.`` (DDP),
``backbone.`` or ``model.``, and a classifier or margin head saved next to the
backbone. :func:`load_backbone_weights` unwraps all of these, drops the heads,
checks every remaining key and shape against the model, and reports every
problem in one sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from facefactors.checkpoint import describe_problems, key_problems, load_checkpoint
from facefactors.errors import CheckpointError

# Wrapper keys under which training scripts nest the weights, tried in order.
_WRAPPER_KEYS = ("state_dict", "model", "backbone", "model_state_dict", "net")
# Prefixes added by DDP / wrapper modules; stripped repeatedly, in any order.
_PREFIXES = ("module.", "backbone.", "model.", "_orig_mod.")
# Margin / classifier heads saved beside a backbone (insightface PartialFC keeps
# a bare ``weight``; other codebases use ``kernel``, ``head.*``, ``margin.*``...).
_HEAD_PREFIXES = ("head.", "margin.", "classifier.", "metric_fc.", "arcface.", "loss.")
_HEAD_KEYS = ("weight", "kernel")


@dataclass
class LoadReport:
    """What happened to a checkpoint's keys (all lists hold stripped key names)."""

    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def read_state_dict(source: str | Path | Mapping) -> tuple[dict[str, torch.Tensor], str, dict]:
    """Read a checkpoint file (``.pt``/``.pth``/``.safetensors``) or take a dict.

    Returns:
        The unwrapped flat dict of tensors (prefixes not yet stripped), a name
        for messages (the file path or ``"state dict"``) and the top-level
        dict itself (for metadata such as ``arch``).
    """
    if isinstance(source, Mapping):
        state, where = dict(source), "state dict"
    else:
        path = Path(source)
        where = str(path)
        if path.suffix == ".safetensors":
            if not path.is_file():
                raise CheckpointError(f"Checkpoint file {path} does not exist.")
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                state = load_file(str(path))
            except (SafetensorError, OSError) as exc:
                raise CheckpointError(
                    f"Checkpoint file {path} is not a readable safetensors file: {exc}."
                ) from None
        else:
            state = load_checkpoint(path)
    top = state
    for key in _WRAPPER_KEYS:
        inner = state.get(key)
        if (
            isinstance(inner, Mapping)
            and inner
            and all(isinstance(v, torch.Tensor) for v in inner.values())
        ):
            state = dict(inner)
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            f"Checkpoint {where} holds no tensors (expected a state dict, or a dict with "
            f"one of the keys {', '.join(_WRAPPER_KEYS)})."
        )
    return tensors, where, top


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove ``module.``/``backbone.``/``model.`` prefixes (repeatedly) from every key."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def _is_head(key: str, model: nn.Module) -> bool:
    """True for classifier / margin-head keys that an embedding model does not own."""
    if key in _HEAD_KEYS or key.startswith(_HEAD_PREFIXES):
        return True
    # torchvision's ImageNet / MS-Celeb classifier: only a head when the model has no fc.
    return key.startswith("fc.") and not hasattr(model, "fc")


def load_backbone_weights(
    model: nn.Module,
    source: str | Path | Mapping,
    strict: bool = True,
    expected_arch: str | None = None,
) -> LoadReport:
    """Load a checkpoint into a backbone, ignoring wrappers, prefixes and heads.

    Args:
        model: a backbone from :func:`facefactors.nets.create_backbone`.
        source: a checkpoint path (``.pt``, ``.pth``, ``.safetensors``) or a dict:
            a bare state dict or one holding ``state_dict``/``model``/``backbone``.
        strict: if True, any missing, unexpected or shape-mismatched key raises;
            if False, the matching keys are loaded and the rest reported.
        expected_arch: if given and the checkpoint records an ``arch`` (as
            ``facefactors pretrain-id`` does), the two must agree.

    Returns:
        A :class:`LoadReport` listing loaded, ignored, missing, unexpected and
        shape-mismatched keys.

    Raises:
        CheckpointError: an unreadable file, or (strict) any key problem, all
            listed in one sentence.
    """
    raw, where, top = read_state_dict(source)
    saved_arch = top.get("arch")
    if expected_arch is not None and isinstance(saved_arch, str) and saved_arch != expected_arch:
        raise CheckpointError(
            f"Checkpoint {where} holds a '{saved_arch}' backbone, not the requested "
            f"'{expected_arch}' (use it with model.backbone={saved_arch}, or pretrain a "
            f"'{expected_arch}' one)."
        )
    state = strip_prefixes(raw)
    report = LoadReport()
    report.ignored = sorted(k for k in state if _is_head(k, model))
    state = {k: v for k, v in state.items() if not _is_head(k, model)}
    own = model.state_dict()
    # Old checkpoints have no BatchNorm ``num_batches_tracked``; torch fills it in.
    report.missing, report.unexpected, report.mismatched = key_problems(
        own, state, optional=lambda k: k.endswith("num_batches_tracked")
    )
    problems = describe_problems(report.missing, report.unexpected, report.mismatched)
    if strict and problems:
        raise CheckpointError(
            f"Checkpoint {where} does not match {type(model).__name__}: {problems} "
            "(check the backbone name, width and input_size)."
        )
    good = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(good, strict=False)
    report.loaded = sorted(good)
    return report
