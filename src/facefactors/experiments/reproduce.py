"""Repeat a preset over seeds (and folds, and methods), test every run, write ``results.json``.

    OUT/seed{S}/                     one training run per seed (datasets with a test split)
    OUT/fold{K}/seed{S}/             one per fold and seed (cross-validated data)
    OUT/{method}/...                 the same per method when ``methods`` are given
    .../test_predictions.json        that run's test predictions: its "done" marker
    OUT/results.json, OUT/report.md  schema facefactors.results/v1 (evaluation/SCHEMA.md)

Cross-validation is person-independent: CK+ brings its subject folds, and a pool
without splits (a flat folder prepared with subject ids) is dealt into ``--folds``
folds by subject (:mod:`facefactors.experiments.protocol`). Every run's config and
split is checked before the first one trains. With several methods the report
compares each with the baseline on the same test faces (paired, clustered by
subject: :mod:`facefactors.evaluation.paired`).

Every run is resumable: a run with ``test_predictions.json`` is skipped, a run
with ``model.pt`` is only evaluated, and a run with ``checkpoints/last.pt``
continues training from it. The test set of each run comes from
:func:`facefactors.ipd.splits.split_index`, the same function the trainer's
training split comes from, so the two cannot overlap (no subject in both).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.config import load_config, to_dict
from facefactors.errors import ConfigError, DataError
from facefactors.experiments.protocol import (
    FOLD_RULE,
    check_runs,
    method_caveats,
    paired_comparisons,
    plan_folds,
    run_facts,
)
from facefactors.ipd.config import IPDConfig, validate_config
from facefactors.ipd.splits import RealSplits, load_real_index, real_splits

PREDICTIONS = "test_predictions.json"


@dataclass(frozen=True)
class RunSpec:
    """One training run of the repeat: its seed, its test fold (or None) and folder."""

    seed: int
    fold: int | None
    folder: Path


def plan_runs(out: Path, seeds: Sequence[int], folds: Sequence[int] | None) -> list[RunSpec]:
    """The runs to do, fold-major (all seeds of fold 0 first)."""
    if folds is None:
        return [RunSpec(s, None, out / f"seed{s}") for s in seeds]
    return [RunSpec(s, k, out / f"fold{k}" / f"seed{s}") for k in folds for s in seeds]


def run_config(
    preset: str, overrides: Sequence[str], seed: int, fold: int | None, extra: Sequence[str] = ()
) -> IPDConfig:
    """The preset with the user's ``--set`` overrides, then this run's seed, fold and ``extra``.

    The fold is always set (``null`` for a dataset with a test split), so a preset's
    ``data.fold`` never reaches a dataset it does not fit.
    """
    mine = [f"train.seed={seed}", f"data.fold={'null' if fold is None else fold}", *extra]
    return validate_config(load_config(IPDConfig, preset, [*overrides, *mine]))


def _device(cfg: IPDConfig) -> torch.device:
    if cfg.train.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.train.device)


@torch.no_grad()
def predict_test(cfg: IPDConfig, model_path: Path, sets: RealSplits) -> dict[str, Any]:
    """Test-set predictions of the E_exp + C_exp export at ``model_path``.

    CK+ neutral reference frames (label == K) are not a class and are left out.

    Returns:
        ``pred``, ``true`` (model class indices), ``yaw`` (degrees, None unknown),
        ``subject`` (per test item, None unknown), ``test_subjects`` and
        ``train_subjects`` (sorted; empty without subjects).
    """
    from torch.utils.data import DataLoader

    from facefactors.data.torchdata import FaceDataset
    from facefactors.export.classifier import load_expression_model
    from facefactors.ipd.data import collate

    model = load_expression_model(model_path)
    k = len(model.classes)
    if list(model.classes) != list(sets.index.classes):
        raise DataError(f"Model {model_path} has other classes than its dataset {sets.index.name}.")
    test_ix = sets.test.with_samples(s for s in sets.test.samples if s.label < k)
    if not test_ix.samples:
        raise DataError(
            f"Dataset {sets.index.name} at {sets.index.root} has no test images for this run."
        )
    ds = FaceDataset(test_ix, "test", cfg.data.size)
    device = _device(cfg)
    model = model.to(device)
    keys = ("image", "expression", "yaw")
    loader = DataLoader(
        ds,
        batch_size=max(cfg.train.batch_size, 64),
        num_workers=cfg.train.num_workers,
        collate_fn=lambda items: collate([{k: it[k] for k in keys} for it in items]),
    )
    preds, true, yaw = [], [], []
    for raw in loader:
        preds.append(model(raw["image"].to(device).float()).argmax(1).cpu())
        true.append(raw["expression"])
        yaw.append(raw["yaw"].double())
    yaws = torch.cat(yaw).tolist()

    def subjects(ix) -> list[str]:
        return sorted({s.subject for s in ix.samples if s.subject is not None})

    return {
        "pred": torch.cat(preds).tolist(),
        "true": torch.cat(true).tolist(),
        "yaw": [None if np.isnan(v) else v for v in yaws],
        "subject": [s.subject for s in test_ix.samples],
        "test_subjects": subjects(test_ix),
        "train_subjects": subjects(sets.train) + subjects(sets.val),
    }


def do_run(spec: RunSpec, cfg: IPDConfig, sets: RealSplits, log=print) -> dict[str, Any]:
    """Train (or resume, or skip) one run and return its test predictions and training facts."""
    from facefactors.checkpoint import atomic_write_text
    from facefactors.ipd.train import train

    done = spec.folder / PREDICTIONS
    if done.is_file():
        log(f"{spec.folder}: finished earlier, skipped")
        return json.loads(done.read_text())
    model_path = spec.folder / "model.pt"
    if not model_path.is_file():
        resume = (spec.folder / "checkpoints" / "last.pt").is_file()
        log(f"{spec.folder}: {'resuming' if resume else 'training'}")
        train(cfg, spec.folder, resume=resume)
    record = predict_test(cfg, model_path, sets)
    record |= {"seed": spec.seed, "fold": spec.fold, "training": run_facts(spec.folder)}
    atomic_write_text(done, json.dumps(record) + "\n")
    return record


def _pose_subsets(pred: np.ndarray, true: np.ndarray, yaw: list) -> tuple[dict | None, str | None]:
    """Table 8 pose subsets over the test images whose yaw is known, and a note if partial."""
    from facefactors.evaluation.metrics import pose_subset_accuracy

    known = np.array([v is not None for v in yaw], dtype=bool)
    if not known.any():
        return None, "Pose subsets are left out: no test image has a known yaw."
    angles = np.array([v for v in yaw if v is not None], dtype=np.float64)
    subsets = pose_subset_accuracy(pred[known], true[known], angles)
    note = None
    if not known.all():
        note = f"Pose subsets cover the {int(known.sum())} of {known.size} test images with a known yaw."
    return subsets, note


def summarize(
    records: Sequence[dict[str, Any]], classes: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """One ``methods.<variant>`` entry from the test predictions of every run.

    Without folds each seed has one run. With folds a seed's predictions are its
    folds' predictions concatenated (the test folds partition the dataset); its
    accuracy is the mean of its fold accuracies, as the paper reports CK+, and
    ``folds`` lists every fold's accuracy over seeds and its subjects.

    Returns:
        (entry, notes).
    """
    from facefactors.evaluation.metrics import accuracy
    from facefactors.evaluation.schema import method_entry, summarize_seeds

    seeds = sorted({r["seed"] for r in records})
    folds = sorted({r["fold"] for r in records if r["fold"] is not None})
    by = {(r["seed"], r["fold"]): r for r in records}
    keys = [(k,) for k in folds] if folds else [(None,)]
    runs = {s: [by[(s, *key)] for key in keys] for s in seeds}
    pred = {s: np.concatenate([r["pred"] for r in runs[s]]).astype(np.int64) for s in seeds}
    first = runs[seeds[0]]
    true = np.concatenate([r["true"] for r in first]).astype(np.int64)
    yaw = [v for r in first for v in r["yaw"]]
    entry = method_entry(seeds, [pred[s] for s in seeds], true, len(classes), list(classes))
    notes: list[str] = []
    subsets, note = _pose_subsets(pred[entry["report_seed"]], true, yaw)
    if subsets is not None:
        entry["pose_subsets"] = subsets
    notes += [note] if note else []
    if folds:
        per_fold = []
        for i, k in enumerate(folds):
            accs = [accuracy(runs[s][i]["pred"], runs[s][i]["true"]) for s in seeds]
            per_fold.append(
                {
                    "fold": k,
                    "n_test": len(first[i]["true"]),
                    "accuracy": summarize_seeds(accs),
                    "test_subjects": first[i]["test_subjects"],
                    "train_subjects": first[i]["train_subjects"],
                }
            )
        mean_per_seed = [
            float(np.mean([f["accuracy"]["per_seed"][j] for f in per_fold]))
            for j in range(len(seeds))
        ]
        entry["pooled_accuracy"] = entry["accuracy"]
        entry["accuracy"] = summarize_seeds(mean_per_seed)
        entry["folds"] = per_fold
        fold_means = [f["accuracy"]["mean"] for f in per_fold]  # each fold's mean over seeds
        entry["fold_summary"] = {
            "mean": float(np.mean(fold_means)),
            "std": float(np.std(fold_means, ddof=1)) if len(fold_means) > 1 else 0.0,
            "n": len(fold_means),
        }
        notes.append(
            f"Accuracy is the mean over test folds {', '.join(map(str, folds))} of each seed's "
            "fold accuracies; pooled_accuracy counts all test images of those folds together."
        )
    return entry, notes


def reproduce(
    preset: str,
    out: str | Path,
    seeds: Sequence[int] = (0, 1, 2, 3),
    folds: int | None = None,
    overrides: Sequence[str] = (),
    log=print,
    methods: Sequence[str] | None = None,
) -> Path:
    """Train and test ``preset`` once per seed (and fold, and method), then write the results.

    Args:
        preset: a preset name (``ipd_rafdb_paper``) or YAML file.
        out: output folder.
        seeds: training seeds (the paper uses 4).
        folds: for CK+, its test folds 0..folds-1 (default: all 10); for a pool
            without splits or folds, the number of person-independent folds
            (default 10); must be None for a dataset with a test split.
        overrides: ``--set`` strings applied to every run.
        methods: variants to run (``baseline``, ``id``, ``ipd``), each the preset
            with ``model.variant`` set, in ``out/<method>/``; None: the preset's.

    Returns:
        The path of ``results.json`` (``report.md`` is written beside it).

    Raises:
        ConfigError, DataError (all before the first run trains), CheckpointError,
        NonFiniteLossError.
    """
    from facefactors.constants import POSE_BIN_EDGES
    from facefactors.evaluation.report import write_report
    from facefactors.evaluation.schema import SCHEMA_VERSION

    out = Path(out)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must list distinct seeds, got {list(seeds)}.")
    if methods is not None and (not methods or len(set(methods)) != len(methods)):
        raise ConfigError(f"--methods must list distinct methods, got {list(methods)}.")
    base = run_config(preset, overrides, seeds[0], None)
    if base.data.source == "synth":
        raise ConfigError(
            "reproduce needs a real dataset: config key 'data.source' is 'synth' and "
            "'data.root' is not set."
        )
    index = load_real_index(base.data)
    fold_ids, derived = plan_folds(index, folds, f"{base.data.source} at {base.data.root}")
    extra = [f"data.folds={derived}"] if derived else []
    base = run_config(preset, overrides, seeds[0], None, extra)  # the settings shown
    names = list(methods) if methods is not None else [base.model.variant]
    plans = {}
    for name in names:
        folder = out / name if methods is not None else out
        variant = [f"model.variant={name}"] if methods is not None else []
        plans[name] = [
            (spec, run_config(preset, overrides, spec.seed, spec.fold, [*extra, *variant]))
            for spec in plan_runs(folder, seeds, fold_ids)
        ]
    splits = check_runs(index, fold_ids, derived, [c for p in plans.values() for _, c in p])
    records = {
        name: [do_run(spec, cfg, splits[spec.fold], log) for spec, cfg in plan]
        for name, plan in plans.items()
    }
    classes = list(index.classes)
    entries, notes = {}, []
    for name, recs in records.items():
        entries[name], method_notes = summarize(recs, classes)
        notes += [f"{name}: {n}" for n in method_notes] if len(names) > 1 else method_notes
    facts = {
        name: [r["training"] for r in recs if "training" in r] for name, recs in records.items()
    }
    notes += method_caveats({m: f for m, f in facts.items() if f}, splits)
    baseline = "baseline" if "baseline" in names else names[0]
    if len(names) > 1:
        paired, paired_notes = paired_comparisons(records, baseline, classes, POSE_BIN_EDGES)
        for name, vs in paired.items():
            entries[name]["vs_baseline"] = vs
        notes += paired_notes
    settings = {
        "preset": preset,
        "overrides": list(overrides),
        "seeds": list(seeds),
        "methods": names,
        "folds": fold_ids,
        "config": to_dict(base),
    }
    if derived:
        settings["fold_rule"] = f"{derived} folds by subject: {FOLD_RULE}"
    results = {
        "schema": SCHEMA_VERSION,
        "dataset": {
            "name": index.name,
            "source": base.data.source,
            "root": base.data.root,
            "classes": classes,
            "num_test": int(
                sum(len(r["true"]) for r in records[baseline] if r["seed"] == seeds[0])
            ),
        },
        "settings": settings,
        "notes": notes,
        "baseline_method": baseline,
        "methods": entries,
    }
    json_path, _ = write_report(out, results)
    return json_path


def evaluate_real(
    runs: dict[str, dict[int, Path]], source: str, root: str | Path, out: str | Path
) -> Path:
    """Score trained runs (method → seed → ``last.pt``) on a real dataset's test split.

    Each run's own config decides image size and classes; the data section is
    replaced by ``source``/``root``. Returns the path of ``report.md``.
    """
    from facefactors.config import from_dict
    from facefactors.evaluation.report import write_report
    from facefactors.evaluation.schema import SCHEMA_VERSION
    from facefactors.ipd.train import read_checkpoint
    from facefactors.training.budget import training_caveat, training_facts

    out = Path(out)
    methods, notes, classes, name = {}, [], None, source
    facts: dict[str, list[dict]] = {}
    for method, seeds in runs.items():
        records = []
        for seed, ckpt in sorted(seeds.items()):
            state = read_checkpoint(ckpt)
            cfg = from_dict(IPDConfig, state["config"])
            cfg.data.source, cfg.data.root = source, str(root)
            sets = real_splits(cfg.data)
            record = predict_test(cfg, Path(ckpt).parent.parent / "model.pt", sets)
            records.append(record | {"seed": seed, "fold": cfg.data.fold})
            classes, name = classes or list(sets.index.classes), sets.index.name
            facts.setdefault(method, []).append(
                training_facts(state["step"], state["epoch"], state["config"]["train"])
            )
        methods[method], method_notes = summarize(records, classes)
        notes += [f"{method}: {n}" for n in method_notes]
    notes += [training_caveat(m, f) for m, f in facts.items()]
    results = {
        "schema": SCHEMA_VERSION,
        "dataset": {"name": name, "source": source, "root": str(root), "classes": classes},
        "settings": {"runs": {m: {str(s): str(p) for s, p in r.items()} for m, r in runs.items()}},
        "notes": notes,
        "baseline_method": "baseline" if "baseline" in methods else next(iter(methods)),
        "methods": methods,
    }
    return write_report(out, results)[1]
