"""Can a trained run's features be drawn with their expression? A decoder refit on them.

IPD-FER's decodes x̂_{i-p} = G(f_id + f_pose) and x̂_{i-p-e} = G(f_id + f_pose + f_exp)
do not differ by the expression (docs/ipd_findings.md §10, §12). Two suspects remain:
the features (the sums may not say where and how the expression moves the pixels)
and the decoder's training (too few steps or too little capacity for a change whose
RMS is a third of the decoder's error). This study separates them. The encoders of a
trained run are frozen; their features of the training faces and of their mirror
images (the run's augmentation) are computed once; a decoder is then trained on them
with Eq. 1's L_recon alone, for many more steps than the run's own had, and measured
every ``eval_every`` steps on the 12 validation identities (never the test split):

- ``psnr_ipe``: x̂_{i-p-e} against x; ``psnr_ip``: x̂_{i-p} against the true neutral face;
- ``expression_change_cos``: cos(x̂_{i-p-e} − x̂_{i-p}, x − x_n) over expressive faces;
- ``expression_gain``: ⟨x̂_{i-p-e} − x̂_{i-p}, x − x_n⟩ / ‖x − x_n‖², the share of the
  true change the decodes' difference draws (1: all of it, 0: none);
- ``response_cos`` and ``response_gain``: the same two figures for x̂_{i-p-e} of x
  against x̂_{i-p-e} of its true neutral face x_n (both through the frozen encoders):
  does the whole autoencoder respond to the expression of its input, in any
  composition? (Scoring one decode against x_n instead is biased: blurring a face
  changes the pixels at its features' edges, where expressions move them, so even a
  decode of x_n itself "draws" 40 % of x − x_n by that measure.)
- ``decode_change_rms`` and ``expression_rms``: the two differences' sizes;
- the same figures on 192 training faces (``train_*``), to tell under- from overfitting.

Decoders: ``warm`` continues the run's own G_dec; ``fresh:B`` starts a new one of base
width B with the run's other decoder settings.

``python -m facefactors.experiments.decoder_refit --run RUN/checkpoints/last.pt
--variant warm --variant fresh:32 --steps 4000 --eval-every 500 --out OUT`` prints one
JSON line per measurement and writes ``OUT/refit_<variant>.png`` (validation faces:
x, x_n, x̂_{i-p}, x̂_{i-p-e}, then both differences ×4 around grey).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from facefactors.constants import CANONICAL_CLASSES, NEUTRAL
from facefactors.errors import FaceFactorsError
from facefactors.evaluation.image_metrics import (
    expression_change_cosine,
    expression_gain,
    gaussian_blur,
    psnr,
    rms_difference,
)
from facefactors.ipd.decoder import Decoder
from facefactors.ipd.losses import cross_entropy, recon_loss
from facefactors.ipd.model import IPDModel

NEUTRAL_ID = CANONICAL_CLASSES.index(NEUTRAL)


@torch.no_grad()
def frozen_features(model: IPDModel, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """(f_id + f_pose, f_exp) of eval-mode encoders: (N, 3, H, W) → (N, 2, D)."""
    model.eval()
    out = []
    for s in range(0, len(x), batch):
        f = model.encode(x[s : s + batch])
        f_ip, _ = model.combine(f)
        out.append(torch.stack([f_ip, f.f_exp], 1).float())
    return torch.cat(out)


@torch.no_grad()
def measure(
    dec: Decoder, feats: torch.Tensor, faces: dict, neutral_feats: torch.Tensor | None = None
) -> dict[str, float]:
    """The figures of the module docstring for ``feats`` (N, 2, D) of ``faces``; the
    ``response_*`` ones need ``neutral_feats`` (N, 2, D), those of the true neutral faces."""
    was = dec.training
    dec.eval()

    def decode(f: torch.Tensor, exp: bool) -> torch.Tensor:
        return torch.cat([dec(c[:, 0] + c[:, 1] if exp else c[:, 0]) for c in f.split(128)])

    ip, ipe = decode(feats, False), decode(feats, True)
    of_neutral = decode(neutral_feats, True) if neutral_feats is not None else None
    dec.train(was)
    x, xn = faces["image"], faces["neutral"]
    expressive = faces["expression"] != NEUTRAL_ID

    def pooled(v: torch.Tensor) -> float:
        return float(v[expressive].pow(2).mean().sqrt())

    def mean(v: torch.Tensor) -> float:
        return float(v[expressive].mean())

    out = {
        "psnr_ipe": float(psnr(ipe, x).mean()),
        "psnr_ip": float(psnr(ip, xn).mean()),
        "expression_change_cos": mean(expression_change_cosine(ipe, ip, x, xn)),
        "expression_gain": mean(expression_gain(ipe, ip, x, xn)),
        "decode_change_rms": pooled(rms_difference(ipe, ip)),
        "expression_rms": pooled(rms_difference(x, xn)),
    }
    if of_neutral is not None:
        out["response_cos"] = mean(expression_change_cosine(ipe, of_neutral, x, xn))
        out["response_gain"] = mean(expression_gain(ipe, of_neutral, x, xn))
    return out


def refit(
    dec: Decoder,
    feats: torch.Tensor,
    faces: dict,
    checks: dict[str, tuple],
    *,
    steps: int,
    eval_every: int,
    lr: float = 1e-3,
    batch: int = 32,
    seed: int = 0,
    squared: bool = False,
    judge: torch.nn.Module | None = None,
    judge_weight: float = 0.0,
    log=None,
) -> list[dict]:
    """Train ``dec`` on frozen features with Eq. 1's L_recon; returns the measurements.

    Args:
        dec: the decoder to train (changed in place).
        feats: (N, 2, D) training features (f_id + f_pose, f_exp), mirrored copies included.
        faces: the training faces of ``feats``: ``image`` (N, 3, H, W) in [-1, 1],
            ``expression`` (N,) canonical classes.
        checks: name → (features, faces with ``neutral``[, features of those neutral
            faces]) measured at step 0, every ``eval_every`` steps and at the end;
            figures are prefixed ``<name>_`` except for ``val``.
        steps, lr, batch, seed: Adam (betas 0.9, 0.999) steps, rate, batch size, seed.
        squared: a diagnostic outside the paper: Eq. 1 with squared instead of absolute
            errors (L1's optimum is the per-pixel median, which drops a change the
            decoder cannot place surely; L2's is the mean, which keeps it faintly).
        judge, judge_weight: the run's frozen expression discriminator D and a weight w:
            adds w (L_fneu + L_fexp) (Eqs. 9–10: D should see neutral in x̂_{i-p} and the
            label in x̂_{i-p-e}; the paper's λ1 = λ2 = 0.001). ``faces["label"]`` holds
            D's label of each face.
        log: called with each measurement as it is made.
    """
    opt = torch.optim.Adam(dec.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    rows, tick = [], time.perf_counter()

    def check(step: int) -> None:
        row: dict = {"step": step, "s": round(time.perf_counter() - tick, 1)}
        for name, check_set in checks.items():
            prefix = "" if name == "val" else f"{name}_"
            row.update({prefix + k: round(v, 4) for k, v in measure(dec, *check_set).items()})
        rows.append(row)
        if log is not None:
            log(row)

    check(0)
    dec.train()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(feats), (batch,), generator=gen)
        f, x = feats[idx], faces["image"][idx]
        out = dec(torch.cat([f[:, 0], f[:, 0] + f[:, 1]]))  # (2B, 3, H, W): x̂_{i-p}, x̂_{i-p-e}
        is_neutral = faces["expression"][idx] == NEUTRAL_ID
        if squared:
            err = (out - torch.cat([x, x])).pow(2).flatten(1).mean(1)  # (2B,)
            loss = (err[batch:] + err[:batch] * is_neutral).mean()
        else:
            loss = recon_loss(out[batch:], out[:batch], x, is_neutral)
        if judge is not None and judge_weight:
            label = faces["label"][idx]
            neutral = torch.full_like(label, int(faces["neutral_label"]))
            logits = judge(out)  # (2B, K): gradients reach the decodes only
            ce = cross_entropy(logits[:batch], neutral) + cross_entropy(logits[batch:], label)
            loss = loss + judge_weight * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            check(step)
    return rows


@torch.no_grad()
def blur_reference(faces: dict, sigmas: tuple[float, ...]) -> list[dict]:
    """How much expression a decoder whose only error is blur would draw, at each σ.

    x and its true neutral x_n are blurred alike (σ in pixels); the figures are the PSNR
    of blur(x) against x and the cosine and gain of blur(x) − blur(x_n) along x − x_n
    over expressive faces: the ceiling of a decoder at that PSNR, were blur its only error.
    """
    x, xn = faces["image"], faces["neutral"]
    expressive = faces["expression"] != NEUTRAL_ID
    rows = []
    for sigma in sigmas:
        bx, bn = gaussian_blur(x, sigma), gaussian_blur(xn, sigma)
        rows.append({
            "sigma": sigma,
            "psnr": round(float(psnr(bx, x).mean()), 2),
            "expression_change_cos": round(float(expression_change_cosine(bx, bn, x, xn)[expressive].mean()), 3),
            "expression_gain": round(float(expression_gain(bx, bn, x, xn)[expressive].mean()), 3),
        })  # fmt: skip
    return rows


def make_decoder(model: IPDModel, spec: str, size: int) -> Decoder:
    """``warm``: a copy of the run's G_dec; ``fresh:B``: a new one of base width B."""
    if spec == "warm":
        return copy.deepcopy(model.dec)
    kind, _, base = spec.partition(":")
    if kind != "fresh" or not base.isdigit():
        raise ValueError(f"A decoder variant is 'warm' or 'fresh:BASE', got {spec!r}.")
    old = model.dec
    first = old.stages[0]
    start_norm = _norm_name(first[1])
    norm = _norm_name(old.stages[1][1])
    d = first[0].in_channels
    return Decoder(d, size, int(base), start_norm, norm, colour_grid=old.colour_grid)


def _norm_name(m: torch.nn.Module) -> str:
    if isinstance(m, torch.nn.InstanceNorm2d):
        return "instance"
    return "batch" if isinstance(m, torch.nn.BatchNorm2d) else "none"


def _difference(a: torch.Tensor, b: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """a − b amplified around mid-grey, as an image in [-1, 1]."""
    return (gain * (a - b) / 2).clamp(-1, 1)


@torch.no_grad()
def refit_grid(dec: Decoder, feats: torch.Tensor, faces: dict, rows: int = 8):
    """Expressive validation faces: x, x_n, x̂_{i-p}, x̂_{i-p-e}, (x − x_n)×4, (x̂_{i-p-e} − x̂_{i-p})×4."""
    from facefactors.training.run import label_columns, tile

    pick = torch.nonzero(faces["expression"] != NEUTRAL_ID)[:, 0][:rows]
    dec.eval()
    f = feats[pick]
    ip, ipe = dec(f[:, 0]), dec(f[:, 0] + f[:, 1])
    x, xn = faces["image"][pick], faces["neutral"][pick]
    grid = tile([x, xn, ip, ipe, _difference(x, xn), _difference(ipe, ip)])
    names = ["real", "true neutral", "G(id+pose)", "G(id+pose+exp)", "true change x4", "decoded x4"]
    return label_columns(grid, names)


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    from facefactors.experiments.decoder_study import _data
    from facefactors.ipd.train import load_trained

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a trained run's checkpoints/last.pt")
    p.add_argument("--variant", action="append", default=None,
                   help="warm (the run's G_dec) or fresh:BASE (repeatable; default warm)")  # fmt: skip
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--judge-weight", type=float, default=0.0,
                   help="diagnostic: add w (L_fneu + L_fexp) through the run's frozen D")  # fmt: skip
    p.add_argument("--squared", action="store_true",
                   help="diagnostic: Eq. 1 with squared errors instead of L1")  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="folder for the refit grids")
    p.add_argument("--blur-reference", type=float, nargs="*", default=None, metavar="SIGMA",
                   help="also print the blur ceiling (blur_reference) at these σ (pixels)")  # fmt: skip
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        model, cfg = load_trained(a.run)
        specs = a.variant or ["warm"]
        for spec in specs:  # refuse a bad variant before the faces are rendered
            make_decoder(model, spec, cfg.data.size)
    except (FaceFactorsError, ValueError) as e:
        raise SystemExit(f"decoder_refit: {e}") from None
    d = cfg.data
    if d.source != "synth":
        raise SystemExit(f"{a.run}: the refit needs a run on synthetic faces (data.source synth).")
    if tuple(d.synth_intensity) != (1.0, 1.6):
        raise SystemExit(
            f"{a.run}: the refit draws intensity (1.0, 1.6), the run drew {d.synth_intensity}."
        )
    # The run's faces: its classes, and neutral, which is always drawn (ipd.data._synth).
    drawn = tuple(model.classes) + (() if NEUTRAL in model.classes else (NEUTRAL,))
    train, val = _data(d.size, d.synth_identities, d.synth_per_identity,
                       d.synth_val_identities, d.synth_seed, drawn)  # fmt: skip
    mirrored = {k: torch.cat([v, v.flip(-1)]) if v.ndim == 4 else torch.cat([v, v])
                for k, v in train.items()}  # fmt: skip
    f_train = frozen_features(model, mirrored["image"])
    from facefactors.ipd.data import canonical_label_map

    lut = canonical_label_map(model.classes)
    mirrored["label"] = torch.tensor([lut[int(c)] for c in mirrored["expression"]])
    mirrored["neutral_label"] = lut[NEUTRAL_ID]
    judge = model.d.eval().requires_grad_(False) if a.judge_weight else None
    f_val = frozen_features(model, val["image"])
    for row in blur_reference(val, tuple(a.blur_reference or ())):
        print(json.dumps({"run": str(a.run), "blur_reference": row}), flush=True)
    seen = {k: v[:192] for k, v in train.items()}  # unmirrored training faces
    checks = {
        "val": (f_val, val, frozen_features(model, val["neutral"])),
        "train": (f_train[:192], seen, frozen_features(model, seen["neutral"])),
    }
    for spec in specs:
        torch.manual_seed(0)
        dec = make_decoder(model, spec, d.size)

        def log(row: dict, spec: str = spec) -> None:
            info = {"run": str(a.run), "variant": spec, "squared": a.squared,
                    "judge_weight": a.judge_weight}  # fmt: skip
            print(json.dumps({**info, **row}), flush=True)

        refit(dec, f_train, mirrored, checks, steps=a.steps, eval_every=a.eval_every,
              lr=a.lr, squared=a.squared, judge=judge, judge_weight=a.judge_weight,
              log=log)  # fmt: skip
        if a.out is not None:
            a.out.mkdir(parents=True, exist_ok=True)
            name = spec.replace(":", "") + ("-l2" if a.squared else "")
            name += f"-d{a.judge_weight:g}" if a.judge_weight else ""
            Image.fromarray(refit_grid(dec, f_val, val)).save(a.out / f"refit_{name}.png")


if __name__ == "__main__":
    main()
