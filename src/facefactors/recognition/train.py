"""Identity pretraining: a backbone plus an ArcFace/CosFace head, one flat loop.

Run folder::

    OUT/config.yaml      the full config
    OUT/metrics.jsonl    one JSON object per log step: step, epoch, lr, loss/<head>,
                         acc/train, images_per_s; and per epoch verify/acc, verify/auc ...
    OUT/backbone.pt      {"state_dict", "arch", "config", "verification"}, rewritten
                         atomically after every epoch; what ``create_backbone(arch,
                         checkpoint=OUT/backbone.pt)`` loads for E_id and N of IPD-FER.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from facefactors.checkpoint import save_checkpoint
from facefactors.config import save_config_yaml, to_dict
from facefactors.errors import ConfigError, NonFiniteLossError
from facefactors.recognition.data import (
    CachedIdentities,
    IdentityFolder,
    list_identities,
    render_dataset,
)
from facefactors.recognition.margin import MarginHead
from facefactors.recognition.verify import evaluate_verification


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
        verify_identities: held-out identities for verification (the synthetic
            test split, or identities taken out of the folder before training).
        verify_per_identity: images per held-out synthetic identity.
        verify_pairs: verification pairs, half same, half different.
        verify_folds: folds of the threshold cross-validation.
        log_every: steps between metrics.jsonl lines.
    """

    arch: str = "resnet18"
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
    verify_identities: int = 100
    verify_per_identity: int = 6
    verify_pairs: int = 3000
    verify_folds: int = 10
    log_every: int = 20


@dataclass
class PretrainResult:
    """What :func:`pretrain` produced."""

    backbone_path: Path
    verification: dict[str, float]
    seconds: float
    final_loss: float
    history: list[dict] = field(default_factory=list)


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
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"Config key 'device' must be auto, cpu or cuda, got '{cfg.device}'.")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Config key 'device' is 'cuda' but no CUDA device is available.")


def build_data(cfg: PretrainConfig) -> tuple[IdentityFolder | CachedIdentities, CachedIdentities]:
    """Training dataset (labels 0..K-1, ``num_identities`` = K) and the held-out set in memory."""
    if cfg.data == "synth":
        from facefactors.recognition.data import synth_identities

        train = synth_identities(
            "train",
            cfg.synth_identities,
            cfg.synth_per_identity,
            cfg.input_size,
            cfg.synth_seed,
            cfg.num_workers,
        )
        held = synth_identities(
            "test",
            cfg.verify_identities,
            cfg.verify_per_identity,
            cfg.input_size,
            cfg.synth_seed,
            cfg.num_workers,
        )
        return train, held
    tree = list_identities(cfg.data)
    names = list(tree)
    if len(names) < cfg.verify_identities + 2:
        raise ConfigError(
            f"Identity folder {cfg.data} has {len(names)} identities; 'verify_identities' "
            f"({cfg.verify_identities}) plus at least 2 for training are needed."
        )
    order = np.random.default_rng(cfg.seed).permutation(len(names))
    held_names = sorted(names[i] for i in order[: cfg.verify_identities])
    train_names = sorted(set(names) - set(held_names))
    train = IdentityFolder(cfg.data, cfg.input_size, train_names)
    held = render_dataset(
        IdentityFolder(cfg.data, cfg.input_size, held_names), num_workers=cfg.num_workers
    )
    return train, held


def _lr_at(cfg: PretrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    """Linear warm-up to ``lr`` over ``warmup_epochs``, then cosine decay to zero."""
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def _random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror a random half of a (B, 3, H, W) batch."""
    mask = torch.rand(x.shape[0], generator=gen) < 0.5
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _build_training(
    cfg: PretrainConfig, num_identities: int, device: torch.device
) -> tuple[torch.nn.Module, MarginHead, torch.optim.Optimizer]:
    """Backbone, margin head and optimiser over their trainable parameters."""
    from facefactors.nets import create_backbone

    backbone = create_backbone(
        cfg.arch, width=cfg.width, input_size=cfg.input_size, embedding_dim=cfg.embedding_dim
    ).to(device)
    if cfg.channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)
    head = MarginHead(backbone.num_features, num_identities, cfg.head, cfg.margin_s, cfg.margin_m)
    head = head.to(device)
    # iresnet's embedding-BN scale is frozen (requires_grad=False), as in insightface.
    params = [p for p in (*backbone.parameters(), *head.parameters()) if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return backbone, head, opt


def save_backbone(
    path: Path, backbone: torch.nn.Module, cfg: PretrainConfig, verification: dict, epoch: int
) -> Path:
    """Write ``backbone.pt`` atomically in the layout :func:`create_backbone` loads."""
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    return save_checkpoint(
        path,
        {
            "state_dict": state,
            "arch": cfg.arch,
            "config": to_dict(cfg),
            "verification": verification,
            "epoch": epoch,
        },
    )


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def pretrain(
    cfg: PretrainConfig,
    out: str | Path,
    train_data: IdentityFolder | CachedIdentities | None = None,
    held_out: CachedIdentities | None = None,
) -> PretrainResult:
    """Train ``cfg.arch`` with a margin head and save ``out/backbone.pt``.

    Args:
        cfg: the settings.
        out: run folder (created).
        train_data / held_out: optional prebuilt datasets (tests); by default built
            from ``cfg.data``. Items are ``{"image", "identity"}`` with identities 0..K-1
            and ``train_data.num_identities`` = K.

    Returns:
        The backbone path, the final verification metrics, wall time and last loss.

    Raises:
        NonFiniteLossError: the loss became NaN/inf; the last saved backbone is kept.
    """
    from tqdm.auto import tqdm

    validate_config(cfg)
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config_yaml(cfg, out / "config.yaml")
    metrics = out / "metrics.jsonl"
    metrics.write_text("")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if train_data is None or held_out is None:
        train_data, held_out = build_data(cfg)
    device = resolve_device(cfg.device)
    backbone, head, opt = _build_training(cfg, train_data.num_identities, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        train_data,
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=gen,
        drop_last=len(train_data) >= cfg.batch_size,
        num_workers=cfg.num_workers,
    )
    steps_per_epoch = len(loader)
    total = cfg.epochs * steps_per_epoch
    loss_name = f"loss/{cfg.head}"
    path = out / "backbone.pt"
    history: list[dict] = []
    verification: dict[str, float] = {}
    sums = {loss_name: 0.0, "acc/train": 0.0}
    count, step, tick, last_loss = 0, 0, time.perf_counter(), math.nan
    bar = tqdm(total=total, desc="pretrain-id", disable=not sys.stderr.isatty())
    for epoch in range(cfg.epochs):
        backbone.train()
        for batch in loader:
            lr = _lr_at(cfg, step, total, steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            x = batch["image"].to(device, non_blocking=True)
            y = batch["identity"].to(device, non_blocking=True)
            if cfg.flip:
                x = _random_flip(x, gen)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                emb = backbone(x)
            cos = head.cosines(emb)
            loss = F.cross_entropy(head.margin(cos, y), y)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"Loss '{loss_name}' became {loss.item()} at step {step} (epoch {epoch}); "
                    f"the last good backbone is {path if path.exists() else 'not yet saved'}."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last_loss = loss.item()
            sums[loss_name] += last_loss
            sums["acc/train"] += (cos.argmax(1) == y).float().mean().item()
            count += 1
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                now = time.perf_counter()
                rec = {
                    "step": step,
                    "epoch": epoch,
                    "lr": lr,
                    **{k: v / count for k, v in sums.items()},
                    "images_per_s": count * cfg.batch_size / max(now - tick, 1e-9),
                }
                _append_jsonl(metrics, rec)
                history.append(rec)
                bar.set_postfix(loss=f"{rec[loss_name]:.3f}")
                sums, count, tick = dict.fromkeys(sums, 0.0), 0, now
        verification = evaluate_verification(
            backbone,
            held_out.images,
            held_out.labels,
            num_pairs=cfg.verify_pairs,
            folds=cfg.verify_folds,
            seed=cfg.seed,
            flip=cfg.flip,
            device=device,
            autocast_bf16=cfg.bf16,
        )
        rec = {"step": step, "epoch": epoch, **{f"verify/{k}": v for k, v in verification.items()}}
        _append_jsonl(metrics, rec)
        history.append(rec)
        save_backbone(path, backbone, cfg, verification, epoch + 1)
    bar.close()
    return PretrainResult(path, verification, time.perf_counter() - start, last_loss, history)
