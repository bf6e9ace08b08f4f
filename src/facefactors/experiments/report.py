"""Evaluate the demo's runs and write ``results.json`` + ``report.md`` (one source of truth).

The numbers come from :mod:`facefactors.experiments.synth_eval`; the report is
rendered by :mod:`facefactors.evaluation.report` from the stored JSON only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.config import to_dict
from facefactors.constants import POSE_BIN_EDGES
from facefactors.experiments.synth_eval import evaluate_method
from facefactors.experiments.testset import SynthTestSet
from facefactors.imaging import from_uint8

GRID_ROWS = 8


def grid_rows(test: SynthTestSet, rows: int = GRID_ROWS) -> list[int]:
    """One face per identity, preferring the largest |yaw|, so the grid shows pose."""
    ids = test.identity.numpy()
    yaw = np.abs(test.yaw.numpy())
    picks = []
    for gid in np.unique(ids)[:rows]:
        idx = np.flatnonzero(ids == gid)
        picks.append(int(idx[np.argmax(yaw[idx])]))
    return picks


@torch.no_grad()
def write_grid(model, test: SynthTestSet, path: Path) -> None:
    """Figs. 8–9 style: real | G(f_id) | G(f_id+f_pose) | G(f_id+f_pose+f_exp) | truths."""
    from facefactors.evaluation.plots import plot_image_grid

    idx = grid_rows(test)
    x = from_uint8(test.image[idx])
    g = model.generate(x)
    columns = [x, g["id"], g["ip"], g["ipe"], from_uint8(test.neutral[idx])]
    columns.append(from_uint8(test.frontal_neutral[idx]))
    titles = ["real", "G(f_id)", "G(f_id+f_pose)", "G(f_id+f_pose+f_exp)", "true neutral"]
    plot_image_grid(columns, titles + ["true frontal neutral"], path)


def _colour_note(grid: int) -> str:
    if not grid:
        return ""
    return (f" and a {grid}x{grid} colour path beside its five stages (not in the paper; "
            "docs/ipd_findings.md §9)")  # fmt: skip


def _notes(ref_cfg: Any, pretrain_info: dict, dcfg: Any) -> list[str]:
    m, t, d = ref_cfg.model, ref_cfg.train, ref_cfg.data
    return [
        (
            f"Quick CPU preset, smaller than the paper: {d.size}x{d.size} px faces (paper: 112), "
            f"ResNet-18 encoders/D at width {m.width} (paper: 64, i.e. 512-d), decoder base "
            f"{m.decoder_channels} channels with {m.decoder_norm} normalisation (paper: "
            f"instance){_colour_note(m.decoder_colour_grid)}, {t.epochs} epochs (paper: 30), "
            f"lr {t.lr}"
            f"{'' if t.decoder_lr is None else f' (decoder {t.decoder_lr})'}. "
            f"Expression intensity drawn from {d.synth_intensity} (the difficulty knob, "
            "calibrated on validation identities of the training split)."
        ),
        (
            "Schedule: 'alternating' is Algorithm 1 as written (three phases per batch, each "
            "with its own Adam); 'joint' updates D first, then takes one Adam step of E_pose, "
            "E_exp, C_p, C_exp and G_dec on L_c + β1 L_cos + L'_G + β2 L_conf from a single "
            "encoder pass (Eq. 12; each network still gets only its own terms)."
        ),
        (
            f"Synthetic data: {d.synth_identities} train identities x {d.synth_per_identity} "
            f"faces ({d.synth_val_identities} held out for validation); test = "
            f"{dcfg.test_identities} unseen identities x {dcfg.test_per_identity} faces."
        ),
        (
            "Identity encoder E_id (= N) pretrained with ArcFace on the synthetic train "
            f"identities: held-out verification acc {pretrain_info.get('acc', float('nan')):.3f}, "
            f"AUC {pretrain_info.get('auc', float('nan')):.3f}."
        ),
        (
            "Leakage probes are linear (logistic regression) on f_exp, fitted and scored on "
            "disjoint faces of the test identities; lower means less identity/pose in f_exp."
        ),
        (
            "Per-class, confusion, pose-subset, leakage and fidelity numbers are from each "
            "method's best seed on the test split (as the paper reports its best run); "
            "choosing it on test accuracy is optimistic, the mean ± std column is not."
        ),
    ]


def identity_encoder_info(path: str | None) -> dict:
    """Verification numbers stored in the identity encoder's checkpoint ({} if unknown)."""
    from facefactors.checkpoint import load_checkpoint

    if not path or not Path(path).is_file():
        return {}
    return dict(load_checkpoint(path).get("verification", {}))


def evaluate_and_report(
    out: Path,
    runs: dict[str, dict[int, Path]],
    test: SynthTestSet,
    ref_cfg: Any,
    dcfg: Any,
    timings: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Evaluate every method, draw the plots, write results.json and report.md.

    ``extra`` may hold a ``tensorial`` section and its ``plots`` (already measured).
    """
    from facefactors.evaluation.plots import plot_pose_subsets, plot_tsne
    from facefactors.evaluation.report import write_report
    from facefactors.evaluation.schema import SCHEMA_VERSION

    plot_dir = out / "plots"
    methods, plots, extras = {}, {}, {}
    for name, seeds in runs.items():
        entry, p, ex = evaluate_method(seeds, test, plot_dir, name)
        methods[name], extras[name] = entry, ex
        plots.update(p)
    for name, ex in extras.items():
        if name in ("baseline", "ipd"):  # Fig. 10 compares these two
            plot_tsne(
                ex["f_exp"][:400],
                ex["labels"][:400],
                plot_dir / f"tsne_{name}.png",
                class_names=ex["classes"],
                identities=test.identity.numpy()[:400] % 100,
                title=f"t-SNE of f_exp: {name}",
            )
            plots[f"tsne/{name}"] = f"plots/tsne_{name}.png"
        if ex["model"].dec is not None:
            write_grid(ex["model"], test, plot_dir / f"grid_{name}.png")
            plots[f"grid/{name}"] = f"plots/grid_{name}.png"
    base = "baseline" if "baseline" in methods else None
    if base is not None:
        from facefactors.evaluation.paired import compare_to_baseline

        for name, ex in extras.items():
            if name != base and ex["classes"] == extras[base]["classes"]:
                methods[name]["vs_baseline"] = compare_to_baseline(
                    ex["correct"], extras[base]["correct"], ex["labels"],
                    test.identity.numpy(), ex["classes"], yaw_deg=test.yaw.numpy(),
                    thresholds=POSE_BIN_EDGES,
                )  # fmt: skip
    subsets = {n: m["pose_subsets"] for n, m in methods.items() if "pose_subsets" in m}
    plot_pose_subsets(subsets, plot_dir / "pose_subsets.png", title="accuracy vs |yaw| subset")
    plots["pose_subsets"] = "plots/pose_subsets.png"

    verification = identity_encoder_info(ref_cfg.model.id_checkpoint)
    elapsed = time.perf_counter() - timings.pop("t0")
    results = {
        "schema": SCHEMA_VERSION,
        "dataset": {
            "name": "synthfaces",
            "classes": extras[next(iter(extras))]["classes"],
            "test_faces": len(test),
            "test_identities": int(len(np.unique(test.identity.numpy()))),
        },
        "settings": {
            "config": to_dict(ref_cfg),
            "seeds": list(dcfg.seeds),
            "identity_encoder": {k: v for k, v in verification.items() if not isinstance(v, list)},
            "timings_s": {
                **{k: round(v, 1) for k, v in timings.items()},
                "total": round(elapsed, 1),
            },
        },
        "notes": _notes(ref_cfg, verification, dcfg),
        "baseline_method": "baseline" if "baseline" in methods else next(iter(methods)),
        "methods": methods,
        "plots": plots,
    }
    from facefactors.training.budget import training_caveat

    results["notes"] += [
        training_caveat(name, m["training"]["runs"])
        for name, m in methods.items()
        if m.get("training", {}).get("runs")
    ]
    extra = dict(extra or {})
    results["plots"].update(extra.pop("plots", {}))
    results["notes"] += extra.pop("notes", [])
    results.update(extra)
    _json, md = write_report(out, results)
    return md
