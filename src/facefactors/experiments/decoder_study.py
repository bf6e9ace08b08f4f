"""Why IPD-FER's decoder does not draw the face: decoder variants on validation identities.

A reconstruction-only version of the IPD-FER generator isolates the decoder: a frozen
identity encoder E_id, trainable E_pose and E_exp started from its weights (§4.2),
x̂_{i-p-e} = G(f_id + f_pose + f_exp) trained with Eq. 1's L_recon (the neutral
term included), nothing else. Each decoder variant trains for the same steps on the
demo's training identities and is measured on the 12 validation identities, never
the test split:

- ``psnr_ipe``: x̂_{i-p-e} against the input x;
- ``psnr_ip``: x̂_{i-p} = G(f_id + f_pose) against the true neutral face in the same
  pose (which no loss here shows the decoder except through neutral inputs);
- ``bg_chroma_err``: mean absolute error of the background's chroma (the corner
  colour minus its grey level, in [0, 1] units) of x̂_{i-p-e} against x: whether the
  summed feature carries the background's hue, which E_id (background-invariant after
  its identity training) and the encoders started from its weights may not;
- ``s_per_step``: the wall time of one training step of this proxy.

``python -m facefactors.experiments.decoder_study --backbone runs/demo/pretrain/backbone.pt``
prints one JSON line per variant. ``--hue-oracle alone|with_id`` runs the decoder-only
diagnostic :func:`hue_oracle` instead (docs/ipd_findings.md §8).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import torch

from facefactors.constants import CANONICAL_CLASSES, NEUTRAL
from facefactors.evaluation.image_metrics import corner_chroma
from facefactors.ipd.decoder import Decoder


@dataclass(frozen=True)
class Variant:
    """One decoder setting: final-stage channels, first-stage and later normalisation."""

    base: int
    start_norm: str
    norm: str = "instance"
    init: str = "torch"
    colour_grid: int = 0


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of images in [-1, 1] (mapped to [0, 1]): (B,)."""
    mse = ((pred.clamp(-1, 1) - target) / 2).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def _data(
    size: int, identities: int, per_identity: int, val_identities: int, seed: int,
    classes: tuple[str, ...] = CANONICAL_CLASSES,
):  # fmt: skip
    """Training and validation faces with their true neutral faces; ``classes`` the drawn
    expressions (the studies above drew all eight; a run's refit draws the run's own)."""
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.sampling import SynthConfig

    config = SynthConfig(expression_intensity=(1.0, 1.6), classes=tuple(classes))
    ds = SynthFaces("train", identities=identities, per_identity=per_identity, size=size,
                    seed=seed, config=config, maps=False)  # fmt: skip
    parts: dict[str, list[torch.Tensor]] = {
        "image": [], "neutral": [], "expression": [], "pose_bin": [],
    }  # fmt: skip
    for s in range(0, len(ds), 256):
        b = ds.batch(range(s, min(s + 256, len(ds))))
        for k in parts:
            parts[k].append(b[k])
    d = {k: torch.cat(v) for k, v in parts.items()}
    first_val = (identities - val_identities) * per_identity
    train = {k: v[:first_val] for k, v in d.items()}
    val = {k: v[first_val:] for k, v in d.items()}
    return train, val


def run_variant(
    v: Variant,
    backbone: str,
    train: dict,
    val: dict,
    *,
    steps: int,
    width: int,
    seed: int = 0,
    lr: float = 3e-4,
    dec_lr: float | None = None,
    pose_lr: float | None = None,
    pose_init: str = "e_id",
    eval_every: int | None = None,
    id_weight: float = 0.0,
    arch: str = "resnet18_fc",
    classify: bool = False,
) -> dict:
    """Train the proxy generator with decoder ``v``; PSNRs on ``val`` and the step time."""
    from facefactors.ipd.losses import identity_loss, recon_loss
    from facefactors.nets import create_backbone

    torch.manual_seed(seed)
    size = train["image"].shape[-1]

    def enc(weights: str | None = backbone) -> torch.nn.Module:
        return create_backbone(arch, width=width, input_size=size, checkpoint=weights)

    e_id, e_exp = enc().eval().requires_grad_(False), enc()
    e_pose = enc(backbone if pose_init == "e_id" else None)
    dec = Decoder(e_exp.num_features, size, v.base, v.start_norm, v.norm, v.init, v.colour_grid)
    d = e_exp.num_features
    c_exp, c_p = torch.nn.Linear(d, len(CANONICAL_CLASSES)), torch.nn.Linear(d, 5)
    params, pose = list(e_exp.parameters()), list(e_pose.parameters())
    if classify:  # the encoders also learn their classes, in the same Adam step (joint)
        params += [*c_exp.parameters()]
        pose += [*c_p.parameters()]
    groups = [{"params": params}, {"params": pose, "lr": pose_lr or lr},
              {"params": list(dec.parameters()), "lr": dec_lr or lr}]  # fmt: skip
    opt = torch.optim.Adam(groups, lr=lr, betas=(0.5, 0.999))
    neutral = CANONICAL_CLASSES.index(NEUTRAL)
    gen = torch.Generator().manual_seed(seed)
    nets = (e_id, e_pose, e_exp, dec)
    curve = []
    tick = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, len(train["image"]), (32,), generator=gen)
        x = train["image"][idx]
        f_pose, f_exp = e_pose(x), e_exp(x)
        f_ip = e_id(x) + f_pose
        out = dec(torch.cat([f_ip, f_ip + f_exp]))
        loss = 10.0 * recon_loss(out[32:], out[:32], x, train["expression"][idx] == neutral)
        if classify:
            ce = torch.nn.functional.cross_entropy
            loss = loss + ce(c_exp(f_exp), train["expression"][idx])
            loss = loss + ce(c_p(f_pose), train["pose_bin"][idx])
        if id_weight:  # Eq. 2 through the frozen N = E_id, weighted like λ3 against λ4 = 10
            n = e_id(out)  # (2B, D): gradients reach the fakes only
            loss = loss + id_weight * identity_loss(n[32:], n[:32], e_id(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            curve.append([step + 1, *_measure(nets, val)])
    per_step = (time.perf_counter() - tick) / steps
    ipe, ip, chroma = _measure(nets, val)
    return {"base": v.base, "start_norm": v.start_norm, "norm": v.norm, "init": v.init,
            "colour_grid": v.colour_grid, "seed": seed, "steps": steps, "lr": lr, "dec_lr": dec_lr or lr, "pose_lr": pose_lr or lr,
            "pose_init": pose_init, "id_weight": id_weight, "classify": classify,
            "psnr_ipe": ipe, "psnr_ip": ip, "bg_chroma_err": chroma, "curve": curve,
            "s_per_step": round(per_step, 3),
            "decoder_params": sum(p.numel() for p in dec.parameters())}  # fmt: skip


def hue_oracle(
    v: Variant, backbone: str, train: dict, val: dict, *, steps: int, width: int,
    with_id: bool, lr: float = 1e-3, arch: str = "resnet18_fc", seed: int = 0,
) -> dict:  # fmt: skip
    """A diagnostic outside the paper: can decoder ``v`` draw a hue its input carries?

    The decoder alone (no encoders) is fed a learned linear map W of four numbers of
    the true background, its corner chroma (×10) and grey level, plus the frozen f_id
    with ``with_id``, and trained on L_recon for ``steps``. If even then the decoded
    corners do not follow the input's hue, the decoder, not the features, is what
    cannot draw it at this budget.
    """
    from facefactors.ipd.losses import recon_loss
    from facefactors.nets import create_backbone

    torch.manual_seed(seed)
    e_id = create_backbone(arch, width=width, input_size=train["image"].shape[-1],
                           checkpoint=backbone).eval().requires_grad_(False)  # fmt: skip

    def inputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grey = ((x[..., :6, :6] + x[..., -6:, -6:]) / 2).mean((1, 2, 3))[:, None]
        with torch.no_grad():
            f_id = torch.cat([e_id(x[i : i + 256]) for i in range(0, len(x), 256)])
        return torch.cat([10 * corner_chroma(x), grey], 1), f_id  # (N, 4), (N, D)

    (c_tr, f_tr), (c_va, f_va) = inputs(train["image"]), inputs(val["image"])
    dec = Decoder(e_id.num_features, train["image"].shape[-1], v.base, v.start_norm, v.norm,
                  v.init)  # fmt: skip
    w = torch.nn.Linear(4, e_id.num_features)
    opt = torch.optim.Adam([*dec.parameters(), *w.parameters()], lr=lr, betas=(0.5, 0.999))
    neutral = train["expression"] == CANONICAL_CLASSES.index(NEUTRAL)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(c_tr), (32,), generator=gen)
        out = dec(w(c_tr[idx]) + (f_tr[idx] if with_id else 0))
        loss = 10.0 * recon_loss(out, out, train["image"][idx], neutral[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dec.eval()
    with torch.no_grad():
        fake = dec(w(c_va) + (f_va if with_id else 0))
    got, true = corner_chroma(fake), corner_chroma(val["image"])
    corr = [float(torch.corrcoef(torch.stack([got[:, k], true[:, k]]))[0, 1]) for k in range(3)]
    return {"oracle": "with_id" if with_id else "alone", "base": v.base, "norm": v.norm,
            "init": v.init, "steps": steps, "lr": lr,
            "psnr_ipe": float(psnr(fake, val["image"]).mean()),
            "bg_chroma_err": float((got - true).abs().mean(1).mean()),
            "bg_chroma_err_mean": float((true - true.mean(0)).abs().mean(1).mean()),
            "chroma_corr_rgb": corr}  # fmt: skip


@torch.no_grad()
def _measure(nets: tuple, val: dict) -> tuple[float, float, float]:
    """(PSNR of x̂_{i-p-e} vs x, PSNR of x̂_{i-p} vs the true neutral, background chroma
    error of x̂_{i-p-e}) on ``val``."""
    e_id, e_pose, e_exp, dec = nets
    for n in nets[1:]:
        n.eval()
    ipe, ip, chroma = [], [], []
    for s in range(0, len(val["image"]), 64):
        x = val["image"][s : s + 64]
        f_ip = e_id(x) + e_pose(x)
        fake = dec(f_ip + e_exp(x))
        ipe.append(psnr(fake, x))
        ip.append(psnr(dec(f_ip), val["neutral"][s : s + 64]))
        chroma.append((corner_chroma(fake) - corner_chroma(x)).abs().mean(1))
    for n in nets[1:]:
        n.train()
    return tuple(float(torch.cat(v).mean()) for v in (ipe, ip, chroma))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", required=True, help="pretrain-id backbone.pt (E_id)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--arch", default="resnet18_fc", help="E_id's backbone name")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--dec-lr", type=float, default=None, help="the decoder's lr (default --lr)")
    p.add_argument(
        "--pose-lr", type=float, default=None, help="E_pose's (and C_p's) lr (default --lr)"
    )
    p.add_argument(
        "--pose-init",
        choices=["e_id", "random"],
        default="e_id",
        help="E_pose starts from E_id's weights (the paper) or at random",
    )
    p.add_argument("--id-weight", type=float, default=0.0, help="λ3 of L_id (λ4 = 10)")
    p.add_argument("--classify", action="store_true", help="add the encoders' cross-entropies")
    p.add_argument("--eval-every", type=int, default=None, help="also measure every N steps")
    p.add_argument("--variants", nargs="+",
                   default=["8:instance", "8:none", "16:none", "32:instance", "32:none"],
                   help="BASE:START_NORM[:NORM[:INIT[:COLOUR_GRID]]] (NORM of the later stages, "
                   "default instance; INIT torch or he, default torch; COLOUR_GRID 0 = "
                   "the paper's decoder, g = a g×g colour path)")  # fmt: skip
    p.add_argument("--hue-oracle", choices=["alone", "with_id"], default=None,
                   help="instead: the decoder-only hue diagnostic (hue_oracle)")  # fmt: skip
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    train, val = _data(64, 120, 16, 12, 0)
    for spec in a.variants:
        base, *norms = spec.split(":")
        grid = [int(norms.pop())] if len(norms) == 4 else []
        v = Variant(int(base), *norms, *grid)
        if a.hue_oracle:
            res = hue_oracle(v, a.backbone, train, val, steps=a.steps, width=a.width,
                             with_id=a.hue_oracle == "with_id", lr=a.dec_lr or 1e-3,
                             arch=a.arch, seed=a.seed)  # fmt: skip
        else:
            res = run_variant(v, a.backbone, train, val, steps=a.steps, width=a.width, lr=a.lr,
                              dec_lr=a.dec_lr, pose_lr=a.pose_lr, pose_init=a.pose_init,
                              eval_every=a.eval_every, id_weight=a.id_weight, arch=a.arch,
                              classify=a.classify, seed=a.seed)  # fmt: skip
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
