"""Paired comparisons of two methods on the same test items, clustered by identity.

Two recognisers scored on the same test faces are not independent samples, and the
faces of one person are not independent of each other. So a comparison here is:

- **per seed, McNemar's exact test** on the faces one method gets right and the
  other wrong (:func:`mcnemar_exact`);
- **over seeds, the mean difference of accuracy** with its spread across seeds;
- **a 95 % interval of that mean difference** from a bootstrap that resamples whole
  test identities (the same resample for every seed and both methods), so the
  interval is as wide as the number of *people* allows
  (:func:`identity_bootstrap_diff`);
- the same interval **per class** (recall on the faces of that class), and the
  share of the overall difference each class carries (:func:`per_class_diffs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> dict[str, float | int]:
    """Exact two-sided McNemar test of two classifiers on the same N items.

    Args:
        a_correct, b_correct: (N,) bool, item i classified right by A / by B.

    Returns:
        ``a_only`` (A right, B wrong), ``b_only`` and ``p``: twice the smaller
        binomial tail of the discordant counts under p = 1/2, capped at 1.
    """
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"McNemar needs two (N,) arrays, got {a.shape} and {b.shape}.")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n, k = a_only + b_only, min(a_only, b_only)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2.0**n if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": float(min(1.0, 2.0 * tail))}


def _cluster_index(clusters: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    ids = np.unique(clusters)
    return ids, [np.flatnonzero(clusters == c) for c in ids]


def cluster_bootstrap_ci(
    diffs: np.ndarray, clusters: np.ndarray, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``diffs`` (N,), resampling whole clusters."""
    rng = np.random.default_rng(seed)
    ids = np.unique(clusters)
    sums = np.array([diffs[clusters == c].sum() for c in ids])
    counts = np.array([(clusters == c).sum() for c in ids])
    pick = rng.integers(0, len(ids), size=(reps, len(ids)))
    means = sums[pick].sum(1) / counts[pick].sum(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def identity_bootstrap_diff(
    method: np.ndarray,
    baseline: np.ndarray,
    identities: np.ndarray,
    *,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean accuracy difference over seeds, method − baseline, with an identity bootstrap.

    Args:
        method: (S_m, N) bool, seed s of the method right on test item i.
        baseline: (S_b, N) bool, the same for the baseline (S_b may differ from S_m).
        identities: (N,) the person of each test item.
        reps, seed: bootstrap size and generator seed.

    Returns:
        ``mean_diff`` (fraction), ``seed_diffs`` (per seed index up to min(S_m, S_b):
        accuracy of method seed s − baseline seed s), ``seed_diff_std``, ``ci95_low``,
        ``ci95_high`` (resampling identities), ``mcnemar_p`` (per seed pair), ``n``
        (test items), ``identities``.
    """
    m, b = np.atleast_2d(np.asarray(method, bool)), np.atleast_2d(np.asarray(baseline, bool))
    ids = np.asarray(identities)
    if m.shape[1] != b.shape[1] or m.shape[1] != len(ids):
        raise ValueError(
            f"Paired comparison needs the same test items: {m.shape}, {b.shape}, {ids.shape}."
        )
    # Per identity: number of items and, per seed, items right; a resample adds rows.
    uniq, members = _cluster_index(ids)
    counts = np.array([len(ix) for ix in members], np.float64)  # (P,)
    m_right = np.stack([m[:, ix].sum(1) for ix in members], 1).mean(0)  # (P,) mean over seeds
    b_right = np.stack([b[:, ix].sum(1) for ix in members], 1).mean(0)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(uniq), size=(reps, len(uniq)))
    boot = (m_right[pick].sum(1) - b_right[pick].sum(1)) / counts[pick].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    pairs = min(len(m), len(b))
    seed_diffs = [float(m[s].mean() - b[s].mean()) for s in range(pairs)]
    return {
        "mean_diff": float(m.mean() - b.mean()),
        "seed_diffs": seed_diffs,
        "seed_diff_std": float(np.std(seed_diffs, ddof=1)) if pairs > 1 else 0.0,
        "ci95_low": float(lo),
        "ci95_high": float(hi),
        "mcnemar_p": [mcnemar_exact(m[s], b[s])["p"] for s in range(pairs)],
        "n": int(m.shape[1]),
        "identities": int(len(uniq)),
    }


def per_class_diffs(
    method: np.ndarray,
    baseline: np.ndarray,
    labels: np.ndarray,
    identities: np.ndarray,
    classes: Sequence[str],
    *,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per-class recall difference (method − baseline) with identity-bootstrap intervals.

    ``share`` is the class's contribution to the overall accuracy difference,
    (n_c / N) · diff_c, so the shares of all classes sum to ``mean_diff``.
    """
    labels = np.asarray(labels)
    n = len(labels)
    out: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(classes):
        rows = labels == c
        if not rows.any():
            continue
        d = identity_bootstrap_diff(
            np.atleast_2d(method)[:, rows], np.atleast_2d(baseline)[:, rows],
            np.asarray(identities)[rows], reps=reps, seed=seed,
        )  # fmt: skip
        out[name] = {
            "diff": d["mean_diff"],
            "ci95_low": d["ci95_low"],
            "ci95_high": d["ci95_high"],
            "n": int(rows.sum()),
            "share": d["mean_diff"] * rows.sum() / n,
        }
    return out


def carriers(per_class: dict[str, dict[str, Any]], total: float, most: int = 2) -> list[str]:
    """The at most ``most`` classes that carry the difference, or [] when it is spread out.

    Classes are taken by the size of their share in the direction of ``total``; they
    carry it when together they hold at least the whole difference while the other
    classes' shares sum to less than a quarter of it.
    """
    if not per_class or abs(total) < 1e-12:
        return []
    sign = np.sign(total)
    order = sorted(per_class, key=lambda c: -sign * per_class[c]["share"])
    for k in range(1, min(most, len(order)) + 1):
        top = sum(per_class[c]["share"] for c in order[:k])
        rest = total - top
        if sign * top >= abs(total) and abs(rest) < 0.25 * abs(total):
            return order[:k]
    return []


def compare_to_baseline(
    method: np.ndarray,
    baseline: np.ndarray,
    labels: np.ndarray,
    identities: np.ndarray,
    classes: Sequence[str],
    *,
    yaw_deg: np.ndarray | None = None,
    thresholds: Sequence[float] = (),
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``methods.<m>.vs_baseline`` entry of results.json (see SCHEMA.md).

    Args:
        method, baseline: (S, N) bool, right or wrong per seed and test item.
        labels: (N,) true class indices; identities: (N,) the person of each item.
        classes: class names in index order.
        yaw_deg, thresholds: with both, ``pose_subsets`` holds the same comparison
            on the faces with |yaw| > t for each t (subsets of fewer than 2 people
            are left out).
    """
    from facefactors.evaluation.metrics import subset_key

    ids = np.asarray(identities)
    out = identity_bootstrap_diff(method, baseline, ids, reps=reps, seed=seed)
    per_class = per_class_diffs(method, baseline, labels, ids, classes, reps=reps, seed=seed)
    out["per_class"] = per_class
    out["carried_by"] = carriers(per_class, out["mean_diff"])
    if yaw_deg is not None:
        out["pose_subsets"] = {}
        for t in thresholds:
            rows = np.abs(np.asarray(yaw_deg)) > t
            if len(np.unique(ids[rows])) < 2:
                continue
            d = identity_bootstrap_diff(
                np.atleast_2d(method)[:, rows], np.atleast_2d(baseline)[:, rows], ids[rows],
                reps=reps, seed=seed,
            )  # fmt: skip
            out["pose_subsets"][subset_key(t)] = {
                k: d[k] for k in ("mean_diff", "ci95_low", "ci95_high", "n")
            }
    return out
