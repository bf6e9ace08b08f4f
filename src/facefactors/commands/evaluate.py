"""``facefactors evaluate``: score trained runs and write ``results.json`` + ``report.md``.

Each ``--run METHOD=RUN_DIR`` adds one training run (a folder written by
``facefactors train``); repeat a method with several folders for several seeds.
Without ``--data`` the runs are scored on unseen synthetic identities (with the
leakage and neutral-fidelity measures only ground truth allows); with
``--data DIR`` on the test split of a real dataset, by default a folder written
by ``facefactors prepare`` (accuracy, per-class, confusion, pose subsets).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate trained runs on synthetic test identities")
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
    p.add_argument("--test-identities", type=int, default=40)
    p.add_argument("--test-per-identity", type=int, default=14)
    p.set_defaults(func=run)


def parse_runs(specs: list[str]) -> dict[str, dict[int, object]]:
    """``METHOD=RUN_DIR`` specs → method → seed → ``checkpoints/last.pt`` path."""
    from pathlib import Path

    from facefactors.checkpoint import load_checkpoint
    from facefactors.errors import ConfigError, DataError

    runs: dict[str, dict[int, Path]] = {}
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--run '{spec}' must look like METHOD=RUN_DIR.")
        method, folder = spec.split("=", 1)
        ckpt = Path(folder) / "checkpoints" / "last.pt"
        if not ckpt.is_file():
            raise DataError(f"Run folder {folder} has no checkpoints/last.pt.")
        seed = int(load_checkpoint(ckpt)["config"]["train"]["seed"])
        if seed in runs.setdefault(method, {}):
            raise ConfigError(f"--run gives method '{method}' seed {seed} twice.")
        runs[method][seed] = ckpt
    return runs


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facefactors.experiments.demo import DemoConfig
    from facefactors.experiments.report import evaluate_and_report
    from facefactors.experiments.synth_eval import load_trained
    from facefactors.experiments.testset import render_test_set

    runs = parse_runs(args.runs)
    out = Path(args.out)
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
    )
    dcfg = DemoConfig(
        seeds=sorted({s for r in runs.values() for s in r}),
        test_identities=args.test_identities,
        test_per_identity=args.test_per_identity,
    )
    import time

    md = evaluate_and_report(out, runs, test, ref, dcfg, {"t0": time.perf_counter()})
    print(f"wrote {md} and {md.parent / 'results.json'}")
    return 0
