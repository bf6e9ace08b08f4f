"""Evaluate trained IPD-FER runs (any variant, several seeds) on synthetic test identities.

For each run this measures what the paper reports (accuracy, per-class accuracy,
confusion, the Table 8 pose subsets) and what only ground truth allows:

* **leakage** — linear-probe accuracy for identity and for the pose bin from f_exp,
  fitted and scored on disjoint samples of the *test* identities (lower is better);
* **neutral fidelity** — PSNR/SSIM between G_dec(f_id + f_pose) and the true neutral
  face, and the cosine between their identity embeddings N(·).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facefactors.constants import CANONICAL_CLASSES, NEUTRAL
from facefactors.experiments.testset import SynthTestSet
from facefactors.imaging import from_uint8
from facefactors.ipd.model import IPDModel
from facefactors.ipd.train import load_trained

# Faces turned at least this far (degrees) take the side test of the neutral decode.
SIDE_MIN_YAW = 20.0


@dataclass
class Outputs:
    """Per-sample outputs of one model on the test set (numpy, N rows)."""

    pred: np.ndarray  # (N,) model label
    f_exp: np.ndarray  # (N, D)
    # decode(f_id + f_pose) vs the true neutral: {"psnr", "ssim", "id_cosine", "n"}.
    fidelity: dict | None = None
    # decode(f_id + f_pose + f_exp) vs the input x: {"psnr", "ssim", "n", "bg_chroma_err",
    # "bg_chroma_err_mean", "expression_change_cos", "rmse", "expression_rms",
    # "decode_change_rms", "decode_change_off_expression", "decode_change_neutral_cos",
    # "expression_gain", "expression_response_cos", "expression_response_gain"}.
    reconstruction: dict | None = None
    f_id: np.ndarray | None = None  # (N, D) frozen identity features, where E_id exists


@torch.no_grad()
def collect(model: IPDModel, test: SynthTestSet, batch: int = 128) -> Outputs:
    """Run the model over the test set: predictions, f_exp and neutral-face fidelity."""
    from facefactors.evaluation.image_metrics import (
        corner_chroma,
        expression_change_cosine,
        expression_gain,
        neutral_fidelity,
        off_change_share,
        psnr,
        rms_difference,
        side_fidelity,
        ssim,
    )

    preds, feats, fakes, emb_fake, emb_true, rec_psnr, rec_ssim, f_ids = ([] for _ in range(8))
    chroma, chroma_true, change, rms_true, rms_drawn, rms_err = ([] for _ in range(6))
    off_share, toward_neutral, gain, response, response_gain = ([] for _ in range(5))
    for s in range(0, len(test), batch):
        x = from_uint8(test.image[s : s + batch])
        f_exp = model.e_exp(x)
        preds.append(model.c_exp(f_exp).argmax(1))
        feats.append(f_exp)
        if model.dec is not None:
            f_ids.append(model.identity(x))
            gen = model.generate(x)
            fake = gen["ip"]  # G_dec(f_id + f_pose): the neutral face
            rec_psnr.append(psnr(gen["ipe"], x))  # G_dec(f_id + f_pose + f_exp) vs x
            rec_ssim.append(ssim(gen["ipe"], x))
            rms_err.append(rms_difference(gen["ipe"], x))
            chroma.append(corner_chroma(gen["ipe"]))
            chroma_true.append(corner_chroma(x))
            neutral = from_uint8(test.neutral[s : s + batch])
            expressive = test.expression[s : s + batch] != CANONICAL_CLASSES.index(NEUTRAL)
            change.append(expression_change_cosine(gen["ipe"], fake, x, neutral)[expressive])
            gain.append(expression_gain(gen["ipe"], fake, x, neutral)[expressive])
            # The whole autoencoder's response to the expression: x̂_{i-p-e} of x against
            # x̂_{i-p-e} of its true neutral face, whatever composition carries it.
            of_neutral = model.generate(neutral)["ipe"]
            response.append(
                expression_change_cosine(gen["ipe"], of_neutral, x, neutral)[expressive]
            )
            response_gain.append(expression_gain(gen["ipe"], of_neutral, x, neutral)[expressive])
            rms_true.append(rms_difference(x, neutral)[expressive])
            rms_drawn.append(rms_difference(gen["ipe"], fake)[expressive])
            off_share.append(off_change_share(gen["ipe"] - fake, x - neutral)[expressive])
            # cos(x̂_{i-p-e} − x̂_{i-p}, x_n − x̂_{i-p}): the target holds no expression,
            # so a high value means f_exp corrects the neutral decode's appearance.
            toward_neutral.append(
                expression_change_cosine(gen["ipe"], fake, neutral, fake)[expressive]
            )
            fakes.append(fake)
            emb_fake.append(model.identity(fake))
            emb_true.append(model.identity(neutral))
    out = Outputs(torch.cat(preds).numpy(), torch.cat(feats).float().numpy())
    if fakes:
        fake_all, neutral_all = torch.cat(fakes), from_uint8(test.neutral)
        out.fidelity = neutral_fidelity(
            fake_all, neutral_all, torch.cat(emb_fake), torch.cat(emb_true),
            identities=test.identity,
        )  # fmt: skip
        # The side test on turned faces: x̂_{i-p} against the true neutral and its mirror.
        turned = test.yaw.abs() >= SIDE_MIN_YAW
        if turned.any():
            side = side_fidelity(fake_all[turned], neutral_all[turned])
            out.fidelity["side"] = {**side, "min_abs_yaw": SIDE_MIN_YAW}
        out.f_id = torch.cat(f_ids).float().numpy()
        true_c = torch.cat(chroma_true)
        out.reconstruction = {
            "psnr": float(torch.cat(rec_psnr).mean()),
            "ssim": float(torch.cat(rec_ssim).mean()),
            "rmse": _pooled_rms(rms_err),  # over all faces, [0, 1] units
            "n": int(len(test)),
            # Background hue: the decode's corner chroma against the input's, and the
            # error of a decoder that draws every background in the mean hue (the floor
            # of one that carries no hue at all).
            "bg_chroma_err": float((torch.cat(chroma) - true_c).abs().mean()),
            "bg_chroma_err_mean": float((true_c - true_c.mean(0)).abs().mean()),
            "expression_change_cos": float(torch.cat(change).mean()),
            "expression_gain": float(torch.cat(gain).mean()),
            "expression_response_cos": float(torch.cat(response).mean()),
            "expression_response_gain": float(torch.cat(response_gain).mean()),
            # The size of the true expression change (x − x_n) and of the decodes'
            # difference, RMS over expressive faces in [0, 1] units.
            "expression_rms": _pooled_rms(rms_true),
            "decode_change_rms": _pooled_rms(rms_drawn),
            "decode_change_off_expression": float(torch.cat(off_share).mean()),
            "decode_change_neutral_cos": float(torch.cat(toward_neutral).mean()),
        }
    return out


def _pooled_rms(per_image: list[torch.Tensor]) -> float:
    """The RMS over all pixels of several images from their per-image RMS values."""
    return float(torch.cat(per_image).pow(2).mean().sqrt())


def f_id_expression_probe(
    f_id: np.ndarray, labels: np.ndarray, identities: np.ndarray, neutral: int | None
) -> dict:
    """The paper's premise measured: how much expression a linear probe reads from f_id.

    The probe is fitted on the faces of half the test identities and scored on the
    other half (people it never saw), for the expression class and, when the classes
    hold neutral, for neutral vs the rest.
    """
    from facefactors.evaluation.probes import linear_probe_accuracy

    people = np.unique(identities)
    fit = np.isin(identities, people[::2])
    out = linear_probe_accuracy(f_id[fit], labels[fit], f_id[~fit], labels[~fit])
    if neutral is not None:
        is_neu = (labels == neutral).astype(np.int64)
        out["neutral_vs_rest"] = linear_probe_accuracy(
            f_id[fit], is_neu[fit], f_id[~fit], is_neu[~fit]
        )
    return out


def test_labels(test: SynthTestSet, classes: list[str]) -> np.ndarray:
    """Canonical test labels → the model's class indices (every test class must be known)."""
    lut = {CANONICAL_CLASSES.index(c): i for i, c in enumerate(classes)}
    return np.array([lut[int(y)] for y in test.expression])


def evaluate_method(
    runs: dict[int, Path], test: SynthTestSet, plot_dir: Path, name: str
) -> tuple[dict, dict[str, str], dict]:
    """Score every seed of one method; plots and probes use the report seed.

    Args:
        runs: seed → training checkpoint path.
        test: the rendered test set.
        plot_dir: where PNGs go (relative links are made against its parent).
        name: method name used in plot file names.

    Returns:
        (method entry for results.json, plots {key: relative path}, extras for
        cross-method plots: ``f_exp``, ``labels``, ``model`` of the report seed).
    """
    from facefactors.evaluation.plots import plot_confusion_matrix
    from facefactors.evaluation.probes import group_split_probe
    from facefactors.evaluation.schema import method_entry

    outputs, models, classes, cfg = {}, {}, None, None
    for seed, path in sorted(runs.items()):
        model, cfg = load_trained(path)
        classes = list(model.classes)
        outputs[seed], models[seed] = collect(model, test), model
    true = test_labels(test, classes)
    seeds = sorted(outputs)
    entry = method_entry(
        seeds,
        [outputs[s].pred for s in seeds],
        true,
        len(classes),
        classes,
        yaw_deg=test.yaw.numpy(),
    )
    t = cfg.train
    # The baseline has one phase; the others run Algorithm 1 (alternating) or its joint form.
    schedule = "single phase" if cfg.model.variant == "baseline" else t.schedule
    entry["training"] = {"schedule": schedule, "epochs": t.epochs, "batch_size": t.batch_size}
    from facefactors.experiments.protocol import run_facts

    # Steps each seed trained, and an early stop by max_steps (the report's caveats).
    entry["training"]["runs"] = [run_facts(Path(runs[s]).parent.parent) for s in seeds]
    rs = entry["report_seed"]
    o = outputs[rs]
    ids, bins = test.identity.numpy(), test.pose_bin.numpy()
    entry["leakage"] = {
        "identity": group_split_probe(o.f_exp, ids, ids),
        "pose_bin": group_split_probe(o.f_exp, bins, ids),
    }
    if o.fidelity is not None:
        entry["neutral_fidelity"] = o.fidelity
        entry["reconstruction"] = o.reconstruction
    if o.f_id is not None:
        neu = classes.index("neutral") if "neutral" in classes else None
        entry["f_id_expression_probe"] = f_id_expression_probe(o.f_id, true, ids, neu)
    plot_dir.mkdir(parents=True, exist_ok=True)
    rel = plot_dir.name
    cm = np.asarray(entry["confusion"])
    plot_confusion_matrix(cm, classes, plot_dir / f"confusion_{name}.png", title=name)
    plots = {f"confusion/{name}": f"{rel}/confusion_{name}.png"}
    extras = {"f_exp": o.f_exp, "labels": true, "model": models[rs], "classes": classes,
              "correct": np.stack([outputs[s].pred == true for s in seeds])}  # fmt: skip
    return entry, plots, extras
