"""Classification metrics on integer label arrays, pose subsets and seed summaries.

All functions are pure and take 1-D integer arrays (NumPy arrays, lists or
tensors) of shape (N,). Accuracies are fractions in [0, 1]; only the
formatting helper turns them into percentages, the way the paper's tables
print them ("88.89 (88.67±0.15)").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from facefactors.constants import POSE_BIN_EDGES
from facefactors.errors import DataError


def as_label_array(x: Any, name: str) -> np.ndarray:
    """Convert labels to a 1-D int64 array, naming ``name`` in the error if that is impossible.

    Args:
        x: a sequence, NumPy array or tensor of shape (N,) holding whole numbers.
        name: the argument name used in error messages.

    Returns:
        An int64 array of shape (N,).
    """
    if hasattr(x, "detach"):  # torch tensors: avoid importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise DataError(f"Argument '{name}' must be 1-D labels, got shape {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise DataError(f"Argument '{name}' must hold whole-number class labels.")
    return arr.astype(np.int64)


def _check_pair(pred: Any, true: Any, num_classes: int | None = None):
    """Validate a (pred, true) pair; return the two int64 arrays and the class count."""
    p = as_label_array(pred, "pred")
    t = as_label_array(true, "true")
    if p.shape != t.shape:
        raise DataError(f"Arguments 'pred' and 'true' differ in length ({p.size} vs {t.size}).")
    if t.size == 0:
        raise DataError("Argument 'true' is empty: there is nothing to evaluate.")
    if num_classes is None:
        num_classes = int(max(p.max(), t.max())) + 1
    for name, arr in (("pred", p), ("true", t)):
        if arr.min() < 0 or arr.max() >= num_classes:
            raise DataError(
                f"Argument '{name}' holds labels outside [0, {num_classes}) "
                f"(min {arr.min()}, max {arr.max()})."
            )
    return p, t, int(num_classes)


def accuracy(pred: Any, true: Any) -> float:
    """Fraction of samples whose prediction equals the label.

    Args:
        pred: predicted class indices, shape (N,).
        true: true class indices, shape (N,).
    """
    p, t, _ = _check_pair(pred, true)
    return float(np.mean(p == t))


def confusion_matrix(pred: Any, true: Any, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs.

    Args:
        pred: predicted class indices, shape (N,).
        true: true class indices, shape (N,).
        num_classes: K, the number of classes.

    Returns:
        An int64 array of shape (K, K); row i is true class i, column j predicted class j.
    """
    p, t, k = _check_pair(pred, true, num_classes)
    # bincount over the flattened (row, col) index is an exact, loop-free histogram.
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def per_class_accuracy(pred: Any, true: Any, num_classes: int) -> np.ndarray:
    """Recall of each class: correct predictions of class i over samples of class i.

    Returns:
        A float64 array of shape (K,); NaN for a class with no test samples (its
        recall is undefined, and reporting 0 would be a false claim).
    """
    cm = confusion_matrix(pred, true, num_classes)
    support = cm.sum(axis=1)
    out = np.full(cm.shape[0], np.nan)
    has = support > 0
    out[has] = np.diag(cm)[has] / support[has]
    return out


def mean_class_accuracy(pred: Any, true: Any, num_classes: int) -> float:
    """Mean of the per-class recalls over classes that occur in ``true``."""
    return float(np.nanmean(per_class_accuracy(pred, true, num_classes)))


def f1_macro(pred: Any, true: Any, num_classes: int) -> float:
    """Unweighted mean F1 over the classes that occur in ``true`` or in ``pred``.

    A class absent from both has no defined F1 and is left out, rather than
    counted as 0 (which would punish a test set for a class it does not hold).
    """
    cm = confusion_matrix(pred, true, num_classes).astype(np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    present = denom > 0
    return float(np.mean(2 * tp[present] / denom[present]))


def subset_key(threshold: float) -> str:
    """Key of the pose subset |yaw| > ``threshold`` degrees, e.g. ``">10"`` or ``">12.5"``."""
    return f">{threshold:g}"


def pose_subset_accuracy(
    pred: Any,
    true: Any,
    yaw_deg: Any,
    thresholds: Sequence[float] = POSE_BIN_EDGES,
) -> dict[str, dict[str, Any]]:
    """Accuracy on the whole test set and on the subsets |yaw| > t (paper Table 8).

    Args:
        pred: predicted class indices, shape (N,).
        true: true class indices, shape (N,).
        yaw_deg: yaw angle of each sample in degrees, shape (N,); the sign is ignored.
        thresholds: the subset thresholds in degrees; a sample is in subset t when
            |yaw| is strictly greater than t, as in the paper's "Pose(>10°)".

    Returns:
        ``{"all": {"n": N, "acc": a}, ">10": {"n": n10, "acc": a10}, ...}`` in the
        order all, then thresholds as given. ``acc`` is None for an empty subset.
    """
    p, t, _ = _check_pair(pred, true)
    yaw = np.abs(np.asarray(yaw_deg, dtype=np.float64).reshape(-1))
    if yaw.shape != t.shape:
        raise DataError(f"Argument 'yaw_deg' has {yaw.size} values but there are {t.size} labels.")
    if not np.all(np.isfinite(yaw)):
        raise DataError("Argument 'yaw_deg' holds NaN or infinite angles.")
    correct = p == t
    out: dict[str, dict[str, Any]] = {"all": {"n": int(t.size), "acc": float(correct.mean())}}
    for thr in thresholds:
        mask = yaw > float(thr)
        n = int(mask.sum())
        out[subset_key(thr)] = {"n": n, "acc": float(correct[mask].mean()) if n else None}
    return out


def seed_summary(values: Sequence[float]) -> dict[str, float | int]:
    """Best, mean and spread of one metric over training seeds.

    The spread is the *sample* standard deviation (ddof=1), the unbiased-variance
    estimate that is usual for "mean ± std over runs"; with a single seed it is 0.

    Args:
        values: the metric of each seed, shape (S,), higher is better.

    Returns:
        ``{"best": max, "mean": mean, "std": std, "n": S}``.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise DataError("Argument 'values' is empty: a seed summary needs at least one run.")
    if not np.all(np.isfinite(v)):
        raise DataError("Argument 'values' holds NaN or infinite metric values.")
    std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return {"best": float(v.max()), "mean": float(v.mean()), "std": std, "n": int(v.size)}


def fmt_best_mean_std(summary: Mapping[str, Any], scale: float = 100.0, digits: int = 2) -> str:
    """Format a :func:`seed_summary` as the paper does: ``"88.89 (88.67±0.15)"``.

    Args:
        summary: a mapping with keys ``best``, ``mean`` and ``std``.
        scale: multiplier applied first (100 turns fractions into percent).
        digits: decimals shown.
    """
    try:
        best, mean, std = (float(summary[k]) * scale for k in ("best", "mean", "std"))
    except KeyError as exc:
        raise DataError(f"Seed summary is missing the key {exc.args[0]!r}.") from None
    if any(math.isnan(x) for x in (best, mean, std)):
        return "n/a"
    return f"{best:.{digits}f} ({mean:.{digits}f}±{std:.{digits}f})"
