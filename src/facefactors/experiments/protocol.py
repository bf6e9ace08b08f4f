"""What ``facefactors reproduce`` will run and what its report must say about it.

- :func:`plan_folds`: which test folds a dataset gets. A dataset with fixed
  splits is tested on its test split; CK+ brings its own subject folds; a pool of
  split ``all`` without folds (a flat ``folder`` prepared with subject ids) is
  dealt into ``K`` person-independent folds (``--folds K``, default 10) by
  :func:`facefactors.data.subjects.subject_folds`.
- :func:`check_runs`: every run's config and every fold's split are checked, and
  the splits built once, before any training starts.
- :func:`paired_comparisons`: each method against the baseline on the same test
  faces (:func:`facefactors.evaluation.paired.compare_to_baseline`), the test
  folds' items concatenated, clustered by subject.
- :func:`run_facts`: the optimiser steps a run trained, for the report's caveats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facefactors.data.records import DatasetIndex
from facefactors.errors import ConfigError
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.splits import RealSplits, split_index

DEFAULT_FOLDS = 10  # the paper's CK+ protocol
FOLD_RULE = (
    "subjects sorted, permuted with numpy default_rng(0), dealt round-robin "
    "(the p-th subject of the permutation goes to fold p mod K)"
)


def plan_folds(
    index: DatasetIndex, folds: int | None, where: str
) -> tuple[list[int] | None, int | None]:
    """The test folds to run and, for a pool without folds, the K to deal it into.

    Args:
        index: the loaded dataset.
        folds: ``--folds`` (None: all of a dataset's own folds, or DEFAULT_FOLDS).
        where: the dataset as the user named it (``data.source`` at ``data.root``).

    Returns:
        ``(fold ids, derived K)``: (None, None) for a dataset with a test split;
        ``derived`` is None when the dataset has its own folds (CK+).

    Raises:
        ConfigError: ``--folds`` for fixed splits, or out of range.
    """
    if "all" not in index.splits:
        if folds is not None:
            raise ConfigError(
                f"--folds {folds} asks for cross-validation, but {where} has fixed splits "
                f"({', '.join(index.splits)}); drop --folds to train on its training split and "
                "test on its test split, or prepare the images without split folders to "
                "cross-validate by subject."
            )
        return None, None
    own = {s.fold for s in index.samples}
    if None not in own:  # CK+: --folds N runs its first N folds
        available = int(index.meta.get("folds") or max(own) + 1)
        if folds is not None and not 1 <= folds <= available:
            raise ConfigError(f"--folds must be between 1 and {available}, got {folds}.")
        return list(range(folds or available)), None
    k = DEFAULT_FOLDS if folds is None else folds
    if k < 2:
        raise ConfigError(f"--folds must be at least 2 for cross-validation, got {k}.")
    return list(range(k)), k


def check_runs(
    index: DatasetIndex,
    fold_ids: Sequence[int] | None,
    derived: int | None,
    configs: Sequence[IPDConfig],
) -> dict[int | None, RealSplits]:
    """Check every run config against the data and split each fold once, before training.

    Raises:
        ConfigError, DataError: naming the key or folder, for the first bad run.
    """
    for cfg in configs:
        classes = cfg.model.classes
        if classes is not None and list(classes) != list(index.classes):
            raise ConfigError(
                f"Config key 'model.classes' ({', '.join(classes)}) differs from the classes of "
                f"{cfg.data.source} at {cfg.data.root} ({', '.join(index.classes)})."
            )
    d = configs[0].data
    return {k: split_index(index, k, d.val_every, derived) for k in fold_ids or [None]}


def run_facts(folder: Path) -> dict[str, Any]:
    """The training length of a finished run, from its checkpoint (see training.budget)."""
    from facefactors.ipd.train import read_checkpoint
    from facefactors.training.budget import training_facts

    state = read_checkpoint(folder / "checkpoints" / "last.pt")
    return training_facts(state["step"], state["epoch"], state["config"]["train"])


def _correct(records: Sequence[Mapping[str, Any]], seeds: Sequence[int], folds: list) -> np.ndarray:
    """(S, N) bool: seed s right on test item i, folds concatenated in order."""
    by = {(r["seed"], r["fold"]): r for r in records}
    rows = []
    for s in seeds:
        pred = np.concatenate([by[(s, k)]["pred"] for k in folds])
        true = np.concatenate([by[(s, k)]["true"] for k in folds])
        rows.append(pred == true)
    return np.stack(rows)


def paired_comparisons(
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    baseline: str,
    classes: Sequence[str],
    thresholds: Sequence[float],
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``vs_baseline`` of every method but ``baseline``, and the notes they need.

    Args:
        records: method -> its runs' test predictions (``pred``, ``true``, ``yaw``,
            ``subject`` per item; ``seed``, ``fold``).
        baseline: the method compared against.
        classes: class names in index order.
        thresholds: |yaw| thresholds of the pose subsets.
    """
    from facefactors.evaluation.paired import compare_to_baseline

    base = records[baseline]
    seeds = sorted({r["seed"] for r in base})
    folds = sorted({r["fold"] for r in base}, key=lambda k: -1 if k is None else k)
    first = {r["fold"]: r for r in base if r["seed"] == seeds[0]}
    true = np.concatenate([first[k]["true"] for k in folds])
    subjects = [v for k in folds for v in first[k].get("subject", [None] * len(first[k]["true"]))]
    notes = []
    if any(v is None for v in subjects):
        notes.append(
            "Paired intervals resample test images, not people: the test faces have no "
            "subject ids, so the intervals are too narrow if a person has several faces."
        )
    ids = np.array([f"image{i}" if v is None else v for i, v in enumerate(subjects)])
    yaw = np.array([np.nan if v is None else v for k in folds for v in first[k]["yaw"]], float)
    ref = _correct(base, seeds, folds)
    out = {}
    for name, recs in records.items():
        if name == baseline:
            continue
        out[name] = compare_to_baseline(
            _correct(recs, seeds, folds), ref, true, ids, classes,
            yaw_deg=yaw, thresholds=thresholds,
        )  # fmt: skip
    return out, notes


def method_caveats(
    facts: Mapping[str, Sequence[Mapping[str, Any]]], splits: Mapping[Any, RealSplits]
) -> list[str]:
    """Report notes on training length (every method) and on how validation was held out."""
    from facefactors.training.budget import training_caveat

    notes = [training_caveat(m, f) for m, f in facts.items()]
    for sets in splits.values():
        notes += [n for n in sets.notes if n not in notes]
    said = {
        "subject": "whole training subjects (no person in both)",
        "split": "the dataset's own validation split",
        "image": "every n-th training image (people shared with training)",
        "none": "nothing: no validation set (data.val_every 0, or too few subjects)",
    }
    by = sorted({sets.val_by for sets in splits.values()})
    notes.append("Validation held out " + "; ".join(said[b] for b in by) + ".")
    return notes
