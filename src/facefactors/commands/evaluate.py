"""``facefactors evaluate``: score trained runs and write ``results.json`` + ``report.md``.

Each ``--run METHOD=RUN_DIR`` adds one training run (a folder written by
``facefactors train``); repeat a method with several folders for several seeds.
Without ``--data`` the runs are scored on unseen synthetic identities (with the
leakage and neutral-fidelity measures only ground truth allows); with
``--data DIR`` on the test split of a real dataset, by default a folder written
by ``facefactors prepare`` (accuracy, per-class, confusion, pose subsets).

Runs of the tensorial model are told apart by their checkpoint: ``--run
tensorial=RUN [--run z0=RUN]`` adds the ``tensorial`` section (Table 1, DCI/MIG/SAP,
edits against the true renders, 3D error), judged by ``--verifier`` (a pretrain-id
``backbone.pt``) and ``--classifier`` (an expression ``model.pt``) when given.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate trained runs on unseen synthetic identities, or on a real test split "
        "with --data",
    )
    p.add_argument(
        "--run",
        dest="runs",
        action="append",
        required=True,
        metavar="METHOD=RUN_DIR",
        help="a training run folder for METHOD (baseline, id, ipd, ...); repeat for seeds",
    )
    p.add_argument("--out", required=True, help="folder for results.json, report.md, plots/")
    p.add_argument(
        "--data", default=None, metavar="DIR",
        help="evaluate on this real dataset's test split instead of synthetic identities",
    )  # fmt: skip
    p.add_argument(
        "--dataset", default="prepared",
        help="loader name for --data (default: a `facefactors prepare` folder)",
    )  # fmt: skip
    p.add_argument(
        "--test-identities", type=int, default=40, metavar="N",
        help="without --data: synthetic test people, never seen in training (default 40)",
    )  # fmt: skip
    p.add_argument(
        "--test-first-identity", type=int, default=0, metavar="K",
        help="without --data: skip the first K synthetic test people, for a fresh test set "
        "(the demo's test people are the first 40; default 0)",
    )  # fmt: skip
    p.add_argument(
        "--test-per-identity", type=int, default=14, metavar="N",
        help="without --data: faces rendered per test person (default 14)",
    )  # fmt: skip
    p.add_argument(
        "--verifier", default=None, metavar="BACKBONE",
        help="tensorial runs: V for identity cosines (a pretrain-id backbone.pt)",
    )  # fmt: skip
    p.add_argument(
        "--classifier", default=None, metavar="MODEL",
        help="tensorial runs: an expression model.pt that judges class agreement",
    )  # fmt: skip
    p.add_argument(
        "--pose-judge", default=None, metavar="FILE",
        help="tensorial runs: the landmark head-pose judge checkpoint; reused when it was "
        "trained for these faces, else trained (about a minute) and saved there "
        "(default: OUT/landmark_judge.pt)",
    )  # fmt: skip
    p.add_argument(
        "--pose-judge-steps", type=int, default=1500, metavar="N",
        help="tensorial runs: training steps of a new pose judge (default 1500)",
    )  # fmt: skip
    p.set_defaults(func=run)


def parse_runs(specs: list[str]) -> dict[str, dict[int, object]]:
    """``METHOD=RUN_DIR`` specs → method → seed → ``checkpoints/last.pt`` path."""
    from pathlib import Path

    from facefactors.checkpoint import entry, load_checkpoint
    from facefactors.errors import ConfigError, DataError

    runs: dict[str, dict[int, Path]] = {}
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--run '{spec}' must look like METHOD=RUN_DIR.")
        method, folder = spec.split("=", 1)
        ckpt = Path(folder) / "checkpoints" / "last.pt"
        if not ckpt.is_file():
            raise DataError(f"Run folder {folder} has no checkpoints/last.pt.")
        seed = entry(load_checkpoint(ckpt), "config.train.seed", ckpt, int)
        if seed in runs.setdefault(method, {}):
            raise ConfigError(f"--run gives method '{method}' seed {seed} twice.")
        runs[method][seed] = ckpt
    return runs


def split_tensorial(runs: dict[str, dict[int, object]]) -> dict[str, object]:
    """Take the tensorial runs (one seed each) out of ``runs``: name → ``model.pt``."""
    from facefactors.checkpoint import load_checkpoint
    from facefactors.errors import ConfigError

    out = {}
    for name in list(runs):
        seeds = runs[name]
        first = next(iter(seeds.values()))
        if not str(load_checkpoint(first).get("format", "")).startswith("facefactors.tensorial"):
            continue
        if len(seeds) > 1:
            raise ConfigError(f"--run gives the tensorial run '{name}' more than one folder.")
        out[name] = first.parent.parent / "model.pt"
        del runs[name]
    if out and "tensorial" not in out:
        raise ConfigError("Tensorial runs need one named 'tensorial' (--run tensorial=RUN).")
    return out


def _tensorial_only(args: argparse.Namespace, models: dict, out) -> int:
    import time
    from pathlib import Path

    from facefactors.errors import ConfigError
    from facefactors.evaluation.report import write_report
    from facefactors.evaluation.schema import SCHEMA_VERSION
    from facefactors.experiments.tensorial_eval import render_test_set
    from facefactors.experiments.tensorial_report import (
        evaluate_tensorial,
        landmark_judge_settings,
    )
    from facefactors.tensorial.checkpoints import load_generator
    from facefactors.tensorial.data import build_data

    tick = time.perf_counter()
    _gen, cfg = load_generator(models["tensorial"])
    d = cfg.data
    train = build_data(cfg).train
    if args.pose_judge_steps < 1:
        raise ConfigError(f"--pose-judge-steps must be positive, got {args.pose_judge_steps}.")
    judge_path = Path(args.pose_judge) if args.pose_judge else out / "landmark_judge.pt"
    judge_cfg = landmark_judge_settings(
        cfg.model.image_size, d.synth_intensity, d.synth_classes, args.pose_judge_steps
    )
    test = render_test_set(
        args.test_identities, args.test_per_identity, cfg.model.image_size, d.synth_seed,
        tuple(d.synth_intensity), list(d.synth_classes),
    )  # fmt: skip
    section, plots = evaluate_tensorial(
        models, test, out / "plots",
        mean_face=train.columns["vertices"].double().mean(0).numpy(),
        classes=list(d.synth_classes), verifier_path=args.verifier,
        classifier_path=args.classifier, pose_judge=(judge_path, judge_cfg),
    )  # fmt: skip
    results = {
        "schema": SCHEMA_VERSION,
        "dataset": {"name": "synthfaces", "classes": list(d.synth_classes)},
        "settings": {"seconds": round(time.perf_counter() - tick, 1)},
        "notes": [],
        "methods": {},
        "tensorial": section,
        "plots": plots,
    }
    _json, md = write_report(out, results)
    print(f"wrote {md} and {md.parent / 'results.json'}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facefactors.experiments.demo import DemoConfig
    from facefactors.experiments.report import evaluate_and_report
    from facefactors.experiments.synth_eval import load_trained
    from facefactors.experiments.testset import render_test_set

    runs = parse_runs(args.runs)
    out = Path(args.out)
    tensorial = split_tensorial(runs)
    if tensorial and not runs:
        return _tensorial_only(args, tensorial, out)
    if tensorial:
        from facefactors.errors import ConfigError

        raise ConfigError(
            "Evaluate tensorial runs apart from IPD-FER runs (the demo reports both together)."
        )
    if args.data is not None:
        from facefactors.experiments.reproduce import evaluate_real

        md = evaluate_real(runs, args.dataset, args.data, out)
        print(f"wrote {md} and {md.parent / 'results.json'}")
        return 0
    first = next(iter(next(iter(runs.values())).values()))
    model, ref = load_trained(first)
    d = ref.data
    test = render_test_set(
        args.test_identities,
        args.test_per_identity,
        d.size,
        d.synth_seed,
        list(model.classes),
        intensity=tuple(d.synth_intensity),
        first_identity=args.test_first_identity,
    )
    extra: dict = {"notes": []}
    if args.test_first_identity:
        k, n = args.test_first_identity, args.test_identities
        extra["notes"].append(
            f"Test people {k}-{k + n - 1} of the synthetic test split, none of the first {k} "
            f"(a demo's test people are the first {DemoConfig.test_identities} by default)."
        )
    dcfg = DemoConfig(
        seeds=sorted({s for r in runs.values() for s in r}),
        test_identities=args.test_identities,
        test_per_identity=args.test_per_identity,
    )
    import time

    md = evaluate_and_report(out, runs, test, ref, dcfg, {"t0": time.perf_counter()}, extra)
    print(f"wrote {md} and {md.parent / 'results.json'}")
    return 0
