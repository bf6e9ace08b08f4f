"""Identity pretraining: a backbone plus an ArcFace/CosFace head, one flat loop.

Run folder::

    OUT/config.yaml      the full config
    OUT/metrics.jsonl    one JSON object per log step: step, epoch, lr, loss/<head>,
                         acc/train, images_per_s; and per epoch verify/acc, verify/auc ...
    OUT/backbone.pt      {"state_dict", "arch", "config", "verification"}, rewritten
                         atomically after every epoch; what ``create_backbone(arch,
                         checkpoint=OUT/backbone.pt)`` loads for E_id and N of IPD-FER.
    OUT/checkpoints/last.pt  the resumable state (backbone, margin head, optimiser, RNGs,
                         position), after every epoch and when ``max_steps`` stops the run.

The loop stands on :mod:`facefactors.training`: the same epoch loader (data order a
pure function of (seed, epoch)), flips from the saved global RNG, metrics writer and
checkpoint layout as IPD-FER, so ``resume=True`` continues bit-for-bit.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facefactors.checkpoint import save_checkpoint
from facefactors.config import save_config_yaml, to_dict
from facefactors.errors import ConfigError
from facefactors.recognition.config import PretrainConfig, validate_config
from facefactors.recognition.data import (
    CachedIdentities,
    IdentityFolder,
    list_identities,
    render_dataset,
)
from facefactors.recognition.margin import MarginHead
from facefactors.recognition.verify import evaluate_verification
from facefactors.training.distributed import DistInfo, resolve_device
from facefactors.training.loop import (
    epoch_loader,
    progress,
    random_hflip,
    steps_per_epoch,
    total_steps,
)
from facefactors.training.phases import check_finite
from facefactors.training.run import MetricsLog, check_fresh_or_resume, last_checkpoint
from facefactors.training.state import (
    read_training_state,
    restore_training_state,
    save_training_state,
)

FORMAT = "facefactors.recognition.train/1"


@dataclass
class PretrainResult:
    """What :func:`pretrain` produced."""

    backbone_path: Path
    verification: dict[str, float]
    seconds: float
    final_loss: float
    history: list[dict] = field(default_factory=list)


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
            first_identity=cfg.synth_first_identity,
            intensity=tuple(cfg.synth_intensity),
        )
        held = synth_identities(
            "test",
            cfg.verify_identities,
            cfg.verify_per_identity,
            cfg.input_size,
            cfg.synth_seed,
            cfg.num_workers,
            intensity=tuple(cfg.synth_intensity),
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


def read_checkpoint(path: str | Path) -> dict:
    """A pretrain-id training checkpoint (``OUT/checkpoints/last.pt``) as a dict.

    Raises:
        CheckpointError: missing, truncated, or written by another trainer.
    """
    return read_training_state(path, FORMAT, "a pretrain-id training checkpoint")


def _read_history(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


class _Nets(torch.nn.Module):
    """Backbone and margin head under one state dict, for the training checkpoint."""

    def __init__(self, backbone: torch.nn.Module, head: MarginHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head


def pretrain(
    cfg: PretrainConfig,
    out: str | Path,
    train_data: IdentityFolder | CachedIdentities | None = None,
    held_out: CachedIdentities | None = None,
    *,
    resume: bool = False,
) -> PretrainResult:
    """Train ``cfg.arch`` with a margin head and save ``out/backbone.pt``.

    Args:
        cfg: the settings (with ``resume``, the run's own config).
        out: run folder (created).
        train_data / held_out: optional prebuilt datasets (tests); by default built
            from ``cfg.data``. Items are ``{"image", "identity"}`` with identities 0..K-1
            and ``train_data.num_identities`` = K.
        resume: continue from ``out/checkpoints/last.pt`` exactly where it stopped.

    Returns:
        The backbone path, the final verification metrics, wall time, last loss and
        the metrics history (the lines of ``metrics.jsonl``).

    Raises:
        ConfigError: a fresh run into a folder that holds a checkpoint.
        CheckpointError: ``resume`` without a readable recognition checkpoint.
        NonFiniteLossError: the loss became NaN/inf; the last saved state is kept.
    """
    validate_config(cfg)
    start = time.perf_counter()
    out = Path(out)
    ckpt = check_fresh_or_resume(out, resume)
    state = None if ckpt is None else read_checkpoint(ckpt)
    out.mkdir(parents=True, exist_ok=True)
    save_config_yaml(cfg, out / "config.yaml")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if train_data is None or held_out is None:
        train_data, held_out = build_data(cfg)
    info = DistInfo(device=resolve_device(cfg.device))
    device = info.device
    backbone, head, opt = _build_training(cfg, train_data.num_identities, device)
    nets = _Nets(backbone, head)
    step, epoch, skip = 0, 0, 0
    if state is not None:
        step, epoch, skip = restore_training_state(state, nets, {"train": opt}, None, ckpt)
    spe = steps_per_epoch(train_data, cfg.batch_size, cfg.seed, info, key="batch_size")
    total = total_steps(cfg.epochs, spe, cfg.max_steps)
    full = cfg.epochs * spe  # the schedule's length, whatever max_steps stops at
    loss_name = f"loss/{cfg.head}"
    path = out / "backbone.pt"
    log = MetricsLog(out / "metrics.jsonl", step if state is not None else None)
    log.restore_window(state.get("metrics_window") if state is not None else None, ckpt)
    verification: dict[str, float] = dict(state["metrics"]) if state is not None else {}
    last_loss = math.nan

    def save(record: dict[str, float]) -> None:
        save_training_state(
            last_checkpoint(out),
            format=FORMAT,
            config=to_dict(cfg),
            model=nets,
            optimizers={"train": opt},
            step=step,
            epoch=epoch,
            batch_in_epoch=skip,
            metrics=record,
            extra={"metrics_window": log.window()},
        )

    bar = progress(total, step, "pretrain-id", info)
    tick = time.perf_counter()
    try:
        while epoch < cfg.epochs and step < total:
            backbone.train()
            loader = epoch_loader(
                train_data,
                batch_size=cfg.batch_size,
                seed=cfg.seed,
                info=info,
                epoch=epoch,
                skip=skip,
                num_workers=cfg.num_workers,
            )
            for batch in loader:
                lr = _lr_at(cfg, step, full, spe)
                for g in opt.param_groups:
                    g["lr"] = lr
                x = batch["image"].to(device, non_blocking=True)
                y = batch["identity"].to(device, non_blocking=True)
                if cfg.flip:
                    x = random_hflip(x)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    emb = backbone(x)
                cos = head.cosines(emb)
                loss = F.cross_entropy(head.margin(cos, y), y)
                check_finite({loss_name: loss}, step + 1, "train")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                last_loss = loss.item()
                log.add({loss_name: last_loss, "acc/train": (cos.argmax(1) == y).float().mean()})
                step, skip = step + 1, skip + 1
                bar.update(1)
                if step % cfg.log_every == 0 or step == total:
                    now = time.perf_counter()
                    ips = log.count * cfg.batch_size / max(now - tick, 1e-9)
                    rec = log.flush(info, step=step, epoch=epoch, lr=lr, images_per_s=ips)
                    bar.set_postfix(loss=f"{rec[loss_name]:.3f}")
                    tick = now
                if step >= total:
                    break
            if skip >= spe:  # the epoch is complete: verify, then save both files
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
                verify = {f"verify/{k}": v for k, v in verification.items()}
                log.write({"step": step, "epoch": epoch} | verify)
                epoch, skip = epoch + 1, 0
                save_backbone(path, backbone, cfg, verification, epoch)
            save(verification)
    finally:
        bar.close()
    history = _read_history(out / "metrics.jsonl")
    return PretrainResult(path, verification, time.perf_counter() - start, last_loss, history)
