"""The tensorial paper's "Table 1 protocol": linear SVMs from code blocks to factors.

For each code block (z_id, z_exp, z_l, z_p, ...) and each discrete factor
(identity, expression, pose bin, ...), a standardised linear SVM predicts the
factor from the block with k-fold cross-validation (10 in the paper). A
disentangled model reads identity off z_id and not off z_exp, and so on.

Folds are stratified by the factor. When ``groups`` (identity ids) are given,
every factor that spans several groups uses grouped stratified folds, so the
same person is never in both train and test and the SVM cannot recognise the
person instead of the factor. A factor whose every class lies within one group
(identity itself, or any finer labelling) cannot be grouped by it: each test
class would be absent from training. Such a factor uses stratified folds by
image instead, and the result says ``"grouped": False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from facefactors.evaluation.disentanglement import ScoreInputError, as_codes, whole_labels


def _as_label_vector(x: Any, name: str, n: int | None = None) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ScoreInputError(f"Argument '{name}' must be 1-D labels, got shape {arr.shape}.")
    if n is not None and arr.size != n:
        raise ScoreInputError(f"Argument '{name}' has {arr.size} samples, expected {n}.")
    return whole_labels(arr, name)


def lies_within_groups(labels: np.ndarray, groups: np.ndarray) -> bool:
    """True when every class of ``labels`` occurs in a single group (e.g. labels = identity)."""
    pairs = np.unique(np.stack([labels, groups], axis=1), axis=0)
    return bool(np.unique(pairs[:, 0]).size == pairs.shape[0])


def latent_svm_folds(
    labels: Any, folds: int = 10, seed: int = 0, groups: Any = None
) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """The (train, test) index pairs used to score one factor.

    Without ``groups``, or when ``labels`` lies within the groups (see module
    docstring), ``StratifiedKFold`` with ``min(folds, largest class size)`` splits;
    otherwise ``StratifiedGroupKFold`` with ``min(folds, number of groups)`` splits.

    Args:
        labels: the factor, shape (N,), at least two classes.
        folds: requested number of folds, at least 2.
        seed: seed of the fold shuffle.
        groups: group id of each sample (identity), shape (N,), or None.

    Returns:
        ``(splits, grouped)``: a list of int index array pairs, and whether the
        folds are grouped.
    """
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = _as_label_vector(labels, "labels")
    if folds < 2:
        raise ScoreInputError(f"Argument 'folds' must be at least 2, got {folds}.")
    counts = np.unique(y, return_counts=True)[1]
    if counts.size < 2:
        raise ScoreInputError(
            "Argument 'labels' is constant: a classifier needs two or more classes."
        )
    g = None if groups is None else _as_label_vector(groups, "groups", y.size)
    grouped = g is not None and not lies_within_groups(y, g)
    if grouped:
        n_groups = int(np.unique(g).size)
        splitter: Any = StratifiedGroupKFold(
            n_splits=min(folds, n_groups), shuffle=True, random_state=seed
        )
        splits = splitter.split(np.zeros((y.size, 1)), y, g)
    else:
        # sklearn refuses more folds than the largest class has samples; a class
        # smaller than the fold count is simply missing from some test folds.
        n_splits = min(folds, int(counts.max()))
        if n_splits < 2:
            raise ScoreInputError(
                "Argument 'labels' has one sample per class: it cannot be cross-validated."
            )
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros((y.size, 1)), y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        out = [(np.asarray(a, np.int64), np.asarray(b, np.int64)) for a, b in splits]
    return out, grouped


def svm_cv_accuracy(
    codes: Any,
    labels: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    *,
    c: float = 1.0,
    max_iter: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Test accuracy of a standardised ``LinearSVC`` on each fold, shape (n_folds,).

    The scaler is fitted on each fold's train part only, so nothing of the test
    part leaks into the standardisation.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    from threadpoolctl import threadpool_limits

    x = as_codes(codes)
    y = _as_label_vector(labels, "labels", x.shape[0])
    accs = np.zeros(len(splits))
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # An unconverged SVM at max_iter is still a valid (slightly pessimistic) probe.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, (tr, te) in enumerate(splits):
            if np.unique(y[tr]).size < 2:
                # One class in training: the best a classifier can do is predict it.
                accs[i] = np.mean(y[te] == y[tr][0])
                continue
            model = make_pipeline(
                StandardScaler(),
                LinearSVC(C=c, dual="auto", max_iter=max_iter, random_state=seed),
            )
            model.fit(x[tr], y[tr])
            accs[i] = np.mean(model.predict(x[te]) == y[te])
    return accs


def latent_svm_matrix(
    codes: Mapping[str, Any],
    factors: Mapping[str, Any],
    folds: int = 10,
    seed: int = 0,
    groups: Any = None,
    *,
    c: float = 1.0,
    max_iter: int = 2000,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Cross-validated linear-SVM accuracy of every factor from every code block.

    Every code block of a factor is scored on the same folds, so blocks are
    compared on identical splits.

    Args:
        codes: code blocks by name, each of shape (N, D_c).
        factors: discrete factors by name, each of shape (N,).
        folds: number of folds (10 in the paper); fewer when the data cannot fill
            them (see :func:`latent_svm_folds`).
        seed: seed of the folds and the solver.
        groups: identity id of each sample, shape (N,), or None for folds by image.
        c: the SVM's C.
        max_iter: solver iteration cap.

    Returns:
        ``{code_name: {factor_name: {"acc", "std", "chance", "folds", "grouped"}}}``:
        mean and population std (ddof 0) of the fold accuracies, the majority-class
        rate of the factor over all N samples, the number of folds used, and whether
        they were grouped.
    """
    if not codes:
        raise ScoreInputError("Argument 'codes' is empty: give at least one code block.")
    if not factors:
        raise ScoreInputError("Argument 'factors' is empty: give at least one factor.")
    blocks = {name: as_codes(x, f"codes[{name!r}]") for name, x in codes.items()}
    sizes = {name: x.shape[0] for name, x in blocks.items()}
    n = next(iter(sizes.values()))
    if any(s != n for s in sizes.values()):
        raise ScoreInputError(f"Argument 'codes' blocks differ in number of samples: {sizes}.")
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in blocks}
    for fname, f in factors.items():
        y = _as_label_vector(f, f"factors[{fname!r}]", n)
        counts = np.unique(y, return_counts=True)[1]
        if counts.size < 2:
            raise ScoreInputError(
                f"Argument 'factors[{fname!r}]' is constant: a classifier needs two or more classes."
            )
        splits, grouped = latent_svm_folds(y, folds=folds, seed=seed, groups=groups)
        chance = float(counts.max() / n)
        for bname, x in blocks.items():
            accs = svm_cv_accuracy(x, y, splits, c=c, max_iter=max_iter, seed=seed)
            out[bname][fname] = {
                "acc": float(accs.mean()),
                "std": float(accs.std()),
                "chance": chance,
                "folds": len(splits),
                "grouped": grouped,
            }
    return out
