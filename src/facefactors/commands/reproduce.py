"""``facefactors reproduce``: repeat a paper preset over seeds (and CK+ folds) and report.

facefactors reproduce --config ipd_rafdb_paper --out runs/rafdb --set data.root=prep/rafdb \
    --set model.id_checkpoint=runs/casia/backbone.pt
facefactors reproduce --config ipd_ckplus_paper --out runs/ckplus --seeds 0 --set data.root=prep/ck
facefactors reproduce --config ipd_synth_quick --out runs/cv --folds 10 --seeds 0 \
    --methods baseline id ipd --set data.root=prep/faces
"""

from __future__ import annotations

import argparse

from facefactors.commands.common import add_config_option, add_overrides_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="train a preset once per seed (and fold, and method), test each run, write "
        "results.json",
        description="Train PRESET once per seed (for cross-validated data: per test fold and "
        "seed; with --methods: per method too), evaluate every run on the test split (or test "
        "fold) and write OUT/results.json and OUT/report.md with the best and mean ± std "
        "accuracy over seeds, per-class accuracy, the confusion matrix, pose subsets where the "
        "prepared yaw is known, per-fold accuracies with their mean ± std, and with several "
        "methods the paired comparison with the baseline. Folds are person-independent: CK+ "
        "brings its own; a prepared folder without splits whose images have subject ids "
        "(prepare --subject-regex) is dealt into --folds folds by subject. Every run is "
        "checked before the first trains. Rerunning skips finished runs and resumes "
        "interrupted ones.",
    )
    add_config_option(p, "ipd_rafdb_paper, ipd_ckplus_paper")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3], metavar="S",
        help="training seeds (default: 0 1 2 3, the paper's four runs)",
    )  # fmt: skip
    p.add_argument(
        "--folds", type=int, default=None, metavar="K",
        help="cross-validation: a dataset without splits is dealt into K folds by subject "
        "(default 10: subjects sorted, permuted with seed 0, dealt round-robin); CK+ runs its "
        "first K of 10 folds (default: all); refused for a dataset with a test split",
    )  # fmt: skip
    p.add_argument(
        "--methods", nargs="+", default=None, metavar="M",
        help="variants to compare (baseline id ipd), each the preset with model.variant=M, in "
        "OUT/M/; the report adds each one's paired difference from the baseline "
        "(default: the preset's variant only)",
    )  # fmt: skip
    add_overrides_option(p, "data.root=prepared/rafdb")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from facefactors.errors import ConfigError
    from facefactors.evaluation.metrics import fmt_best_mean_std
    from facefactors.experiments.reproduce import reproduce

    if args.config is None:
        raise ConfigError("Pass --config PRESET (e.g. ipd_rafdb_paper).")
    path = reproduce(
        args.config, args.out, args.seeds, args.folds, args.overrides, methods=args.methods
    )
    results = json.loads(path.read_text())
    for method, entry in results["methods"].items():
        print(f"{method}: test accuracy {fmt_best_mean_std(entry['accuracy'])} (best (mean±std))")
        for fold in entry.get("folds", []):
            print(f"  fold {fold['fold']}: {fmt_best_mean_std(fold['accuracy'])}")
        if "fold_summary" in entry:
            f = entry["fold_summary"]
            print(f"  over {f['n']} folds: {100 * f['mean']:.2f} ± {100 * f['std']:.2f}")
        if "vs_baseline" in entry:
            v = entry["vs_baseline"]
            print(
                f"  vs {results['baseline_method']}: {100 * v['mean_diff']:+.2f} pp, 95 % CI "
                f"[{100 * v['ci95_low']:+.2f}, {100 * v['ci95_high']:+.2f}] over "
                f"{v['identities']} people"
            )
    print(f"wrote {path} and {path.parent / 'report.md'}")
    return 0
