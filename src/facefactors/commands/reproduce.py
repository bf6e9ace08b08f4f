"""``facefactors reproduce``: repeat a paper preset over seeds (and CK+ folds) and report.

facefactors reproduce --config ipd_rafdb_paper --out runs/rafdb --set data.root=prep/rafdb \
    --set model.id_checkpoint=runs/casia/backbone.pt
facefactors reproduce --config ipd_ckplus_paper --out runs/ckplus --seeds 0 --set data.root=prep/ck
"""

from __future__ import annotations

import argparse

from facefactors.commands.common import add_config_option, add_overrides_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="train a paper preset once per seed (and fold), test each run, write results.json",
        description="Train PRESET once per seed (for CK+: per test fold and seed), evaluate every "
        "run on the test split (or test fold) and write OUT/results.json and OUT/report.md with "
        "the best and mean ± std accuracy over seeds, per-class accuracy, the confusion matrix, "
        "pose subsets where the prepared yaw is known and, for CK+, per-fold accuracies. "
        "Rerunning skips finished runs and resumes interrupted ones.",
    )
    add_config_option(p, "ipd_rafdb_paper, ipd_ckplus_paper")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3], metavar="S",
        help="training seeds (default: 0 1 2 3, the paper's four runs)",
    )  # fmt: skip
    p.add_argument(
        "--folds", type=int, default=None, metavar="N",
        help="cross-validated datasets (CK+): test folds 0..N-1 only (default: all folds)",
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
    path = reproduce(args.config, args.out, args.seeds, args.folds, args.overrides)
    results = json.loads(path.read_text())
    for method, entry in results["methods"].items():
        print(f"{method}: test accuracy {fmt_best_mean_std(entry['accuracy'])} (best (mean±std))")
        for fold in entry.get("folds", []):
            print(f"  fold {fold['fold']}: {fmt_best_mean_std(fold['accuracy'])}")
    print(f"wrote {path} and {path.parent / 'report.md'}")
    return 0
