"""The demo's tensorial part: train the tensorial model and Z_0, measure them on unseen identities.

Both train, as two of the demo's jobs, on the same rendered faces
(``tensorial_synth_quick`` and ``z0_synth_quick``) with the demo's identity network
as V of E_veri; the evaluation judges with the same V and with the demo's baseline
expression recogniser. Finished runs are reused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from facefactors.config import to_dict
from facefactors.experiments.jobs import Job, run_finished

# Relative training times, beside those of the IPD-FER jobs (experiments.demo.COST).
COST = {"tensorial": 15.0, "z0": 6.5}

PRESETS = {"tensorial": "tensorial_synth_quick", "z0": "z0_synth_quick"}


def _configs(backbone: Path, seed: int, overrides: list[str]) -> dict[str, Any]:
    from facefactors.tensorial.config import preset

    fixed = [f"train.seed={seed}", f"verifier_checkpoint={backbone}"]
    return {name: preset(p, fixed + list(overrides)) for name, p in PRESETS.items()}


def tensorial_jobs(
    out: Path, backbone: Path, seed: int, overrides: list[str], log: Any = print
) -> list[Job]:
    """The trainings of the tensorial model and Z_0 still to do (finished runs are reused).

    Each job renders its own faces: both presets draw the same ones, in about 2 s.
    """
    from facefactors.tensorial.train import train

    jobs = []
    for name, cfg in _configs(backbone, seed, overrides).items():
        run = out / "runs" / f"{name}-seed{seed}"
        ckpt = run / "checkpoints" / "last.pt"
        if run_finished(run):
            log(f"{name} seed {seed}: reusing {run}")
            continue
        kwargs = {"cfg": cfg, "out": run, "resume": ckpt.is_file()}
        jobs.append(Job(f"{name} seed {seed}", train, kwargs, COST[name]))
    return jobs


def evaluate_tensorial_runs(
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
    """Evaluate the trained runs of :func:`tensorial_jobs`; returns (section, plots, timings)."""
    from facefactors.experiments.tensorial_eval import render_test_set
    from facefactors.experiments.tensorial_report import (
        evaluate_tensorial,
        landmark_judge_settings,
    )
    from facefactors.tensorial.data import build_data

    tick = time.perf_counter()
    cfgs = _configs(backbone, seed, overrides)
    models = {name: out / "runs" / f"{name}-seed{seed}" / "model.pt" for name in cfgs}
    main = cfgs["tensorial"]
    d = main.data
    mean_face = build_data(main).train.columns["vertices"].double().mean(0).numpy()
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
    seconds = time.perf_counter() - tick
    log(f"tensorial evaluation: {seconds:.0f} s")
    return section, plots, {"tensorial_eval_s": seconds}
