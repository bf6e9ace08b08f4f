"""The typed config of identity pretraining (flat, so ``--set epochs=3`` works)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facefactors.devices import check_device
from facefactors.errors import ConfigError


@dataclass
class PretrainConfig:
    """Face-recognition pretraining settings (flat, so ``--set epochs=3`` works).

    Attributes:
        arch: backbone name for :func:`facefactors.nets.create_backbone`; use the
            family the IPD-FER encoders use, since all of them load this checkpoint.
        width: backbone base width (64 = the standard network).
        input_size: square image size (112, or 64 for quick CPU runs).
        embedding_dim: embedding size; None = 8 × width.
        head: ``arcface`` or ``cosface``.
        margin_s: logit scale s.
        margin_m: margin m (radians for ArcFace; cosine units for CosFace).
        epochs: passes over the training identities.
        batch_size: images per step.
        optimizer: ``sgd`` (momentum 0.9) or ``adamw``.
        lr: peak learning rate, reached after ``warmup_epochs``, then cosine decay to 0.
        warmup_epochs: linear warm-up length (fractions allowed).
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        flip: random horizontal flips during training, and flip-averaged
            embeddings at verification.
        seed: seeds model init, data order and pair sampling.
        num_workers: data-loader worker processes.
        threads: torch intra-op threads for this process; None leaves torch's
            default. On a busy machine 1 thread can beat 2 (no OpenMP spinning).
        bf16: bfloat16 autocast for the backbone (CPU and CUDA).
        channels_last: channels-last memory format for the backbone.
        device: ``auto`` (CUDA if present), ``cpu`` or ``cuda``.
        data: ``synth`` or a folder ``root/<identity>/*.jpg``.
        synth_identities: synthetic training identities.
        synth_per_identity: synthetic images per training identity.
        synth_seed: seed of the synthetic renderer.
        synth_first_identity: first synthetic training identity; training uses
            identities ``first .. first + synth_identities - 1`` of the train split, so a
            network for IPD-FER can leave out the identities IPD-FER trains and
            validates on (its quick presets use train identities 0..119).
        synth_intensity: expression intensity range of the synthetic faces (training
            and verification); match the data the identity encoder will serve.
        verify_identities: held-out identities for verification (the synthetic
            test split, or identities taken out of the folder before training).
        verify_per_identity: images per held-out synthetic identity.
        verify_pairs: verification pairs, half same, half different.
        verify_folds: folds of the threshold cross-validation.
        log_every: steps between metrics.jsonl lines.
        max_steps: stop (and checkpoint) after this many steps in total, without
            changing the learning-rate schedule (None: run all epochs).
    """

    arch: str = "resnet18_fc"
    width: int = 64
    input_size: int = 112
    embedding_dim: int | None = None
    head: Literal["arcface", "cosface"] = "arcface"
    margin_s: float = 64.0
    margin_m: float = 0.5
    epochs: int = 20
    batch_size: int = 128
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    warmup_epochs: float = 1.0
    weight_decay: float = 5e-4
    flip: bool = True
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None
    bf16: bool = False
    channels_last: bool = False
    device: str = "auto"
    data: str = "synth"
    synth_identities: int = 500
    synth_per_identity: int = 20
    synth_seed: int = 0
    synth_first_identity: int = 0
    synth_intensity: list[float] = field(default_factory=lambda: [0.5, 1.0])
    verify_identities: int = 100
    verify_per_identity: int = 6
    verify_pairs: int = 3000
    verify_folds: int = 10
    log_every: int = 20
    max_steps: int | None = None


def validate_config(cfg: PretrainConfig) -> None:
    """Reject inconsistent settings with one sentence naming the key."""
    from facefactors.nets import backbone_names

    if cfg.arch not in backbone_names():
        raise ConfigError(
            f"Config key 'arch' must be one of {', '.join(backbone_names())}, got '{cfg.arch}'."
        )
    for key in (
        "epochs",
        "batch_size",
        "width",
        "synth_identities",
        "synth_per_identity",
        "verify_pairs",
    ):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"Config key '{key}' must be at least 1, got {getattr(cfg, key)}.")
    if cfg.synth_first_identity < 0:
        raise ConfigError(
            f"Config key 'synth_first_identity' must be >= 0, got {cfg.synth_first_identity}."
        )
    lo_hi = list(cfg.synth_intensity)
    if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
        raise ConfigError(
            f"Config key 'synth_intensity' must be [low, high] with 0 <= low <= high, got {lo_hi}."
        )
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ConfigError(f"Config key 'max_steps' must be at least 1, got {cfg.max_steps}.")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"Config key 'threads' must be at least 1, got {cfg.threads}.")
    if cfg.verify_identities < 2:
        raise ConfigError(
            f"Config key 'verify_identities' must be at least 2, got {cfg.verify_identities}."
        )
    if cfg.data == "synth" and cfg.verify_per_identity < 2:
        raise ConfigError(
            "Config key 'verify_per_identity' must be at least 2 to form same-identity pairs."
        )
    check_device(cfg.device, "Config key 'device'")
