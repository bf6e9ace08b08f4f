"""The demo's tensorial part: train the tensorial model and Z_0, measure them on unseen identities.

Both train on the same rendered faces (``tensorial_synth_quick`` and ``z0_synth_quick``)
with the demo's identity network as V of E_veri; the evaluation judges with the same
V and with the demo's baseline expression recogniser. Finished runs are reused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from facefactors.config import to_dict

PRESETS = {"tensorial": "tensorial_synth_quick", "z0": "z0_synth_quick"}


def run_tensorial(
    out: Path,
    backbone: Path,
    classifier: Path | None,
    *,
    seed: int,
    overrides: list[str],
    test_identities: int,
    test_per_identity: int,
    judge_steps: int = 1500,
    log: Any = print,
) -> tuple[dict[str, Any], dict[str, str], dict[str, float]]:
    """Train (or reuse) both runs, then evaluate; returns (section, plots, timings)."""
    from facefactors.experiments.tensorial_eval import render_test_set
    from facefactors.experiments.tensorial_report import (
        evaluate_tensorial,
        landmark_judge_settings,
    )
    from facefactors.tensorial.config import preset
    from facefactors.tensorial.data import build_data
    from facefactors.tensorial.train import train

    timings: dict[str, float] = {}
    fixed = [f"train.seed={seed}", f"verifier_checkpoint={backbone}"]
    cfgs = {name: preset(p, fixed + list(overrides)) for name, p in PRESETS.items()}
    data = None
    models: dict[str, Path] = {}
    for name, cfg in cfgs.items():
        run = out / "runs" / f"{name}-seed{seed}"
        ckpt = run / "checkpoints" / "last.pt"
        models[name] = run / "model.pt"
        if models[name].is_file() and ckpt.is_file():
            log(f"{name} seed {seed}: reusing {run}")
            continue
        tick = time.perf_counter()
        data = data or build_data(cfg)  # both presets draw the same faces
        train(cfg, run, resume=ckpt.is_file(), data=data)
        timings[f"{name}_s"] = time.perf_counter() - tick
        log(f"{name} seed {seed}: trained in {timings[f'{name}_s']:.0f} s")
    tick = time.perf_counter()
    main = cfgs["tensorial"]
    d = main.data
    data = data or build_data(main)
    mean_face = data.train.columns["vertices"].double().mean(0).numpy()
    test = render_test_set(
        test_identities, test_per_identity, main.model.image_size, d.synth_seed,
        tuple(d.synth_intensity), list(d.synth_classes),
    )  # fmt: skip
    section, plots = evaluate_tensorial(
        models, test, out / "plots", mean_face=np.asarray(mean_face), classes=list(d.synth_classes),
        verifier_path=backbone, classifier_path=classifier,
        pose_judge=(out / "runs" / "landmark_judge.pt", landmark_judge_settings(
            main.model.image_size, d.synth_intensity, d.synth_classes, judge_steps)),
    )  # fmt: skip
    section["settings"] = {name: to_dict(cfg) for name, cfg in cfgs.items()}
    timings["tensorial_eval_s"] = time.perf_counter() - tick
    log(f"tensorial evaluation: {time.perf_counter() - tick:.0f} s")
    return section, plots, timings
