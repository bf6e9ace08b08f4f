"""Linear probes that measure how much of a factor leaks into a feature.

A probe is a standardised multinomial logistic regression. If identity (or
pose bin) can be read back from f_exp with a linear model far above chance,
f_exp is not disentangled from it. Lower probe accuracy is better.

Identity leakage is measured on *test* identities, which no model saw in
training; the probe is therefore fitted and scored on disjoint samples of the
same identities (:func:`split_per_group` halves each identity's samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facefactors.errors import DataError
from facefactors.evaluation.metrics import as_label_array

DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


def split_per_group(groups: Any, frac: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices so every group has samples on both sides.

    Each group's samples are shuffled and the first ``round(frac * n)`` go to the
    fit side, at least one and, when the group has two or more samples, at most
    ``n - 1``, so the score side never holds a group the probe did not see. A
    group with a single sample goes to the fit side only.

    Args:
        groups: group id of each sample (e.g. identity), shape (N,).
        frac: fraction of each group's samples used to fit, in (0, 1).
        seed: seed of the shuffle.

    Returns:
        ``(fit_idx, score_idx)``: sorted int64 index arrays that partition range(N).
    """
    g = as_label_array(groups, "groups")
    if not 0.0 < frac < 1.0:
        raise DataError(f"Argument 'frac' must lie strictly between 0 and 1, got {frac}.")
    rng = np.random.default_rng(seed)
    fit: list[np.ndarray] = []
    score: list[np.ndarray] = []
    for gid in np.unique(g):
        idx = np.flatnonzero(g == gid)
        idx = idx[rng.permutation(idx.size)]
        n_fit = int(np.clip(round(frac * idx.size), 1, max(idx.size - 1, 1)))
        fit.append(idx[:n_fit])
        score.append(idx[n_fit:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(score))


def _as_features(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise DataError(
            f"Argument '{name}' must be a (N, D) feature matrix, got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"Argument '{name}' holds NaN or infinite feature values.")
    return arr


def _cv_splitter(labels: np.ndarray, folds: int, seed: int):
    """Stratified folds when every class can fill them; plain shuffled folds otherwise."""
    from sklearn.model_selection import KFold, StratifiedKFold

    min_count = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    if min_count >= 2:
        return StratifiedKFold(n_splits=min(folds, min_count), shuffle=True, random_state=seed)
    return KFold(n_splits=min(folds, labels.size), shuffle=True, random_state=seed)


def linear_probe_accuracy(
    train_feats: Any,
    train_labels: Any,
    test_feats: Any,
    test_labels: Any,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    cv_folds: int = 3,
    seed: int = 0,
    max_iter: int = 1000,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Fit a linear probe on one set of features and score it on another.

    The inverse regularisation C is chosen from ``cs`` by cross-validation on the
    training part only; the test part is touched once, for the final score.

    Args:
        train_feats: features to fit on, shape (N_train, D).
        train_labels: their labels, shape (N_train,).
        test_feats: features to score on, shape (N_test, D).
        test_labels: their labels, shape (N_test,).
        cs: candidate values of C.
        cv_folds: folds of the internal cross-validation.
        seed: seed of the folds and the solver.
        max_iter: solver iteration cap.
        num_classes: K for the uniform chance level 1/K; by default the number of
            distinct labels in train and test together.

    Returns:
        ``{"acc", "chance_majority", "chance_uniform", "C", "n_train", "n_test",
        "num_classes"}``; ``chance_majority`` is the test-set rate of the most
        frequent test label, the accuracy of always guessing it.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    xtr, xte = _as_features(train_feats, "train_feats"), _as_features(test_feats, "test_feats")
    ytr, yte = (
        as_label_array(train_labels, "train_labels"),
        as_label_array(test_labels, "test_labels"),
    )
    if xtr.shape[0] != ytr.size or xte.shape[0] != yte.size:
        raise DataError("Probe features and labels differ in number of samples.")
    if xtr.shape[1] != xte.shape[1]:
        raise DataError(
            f"Probe train and test features differ in width ({xtr.shape[1]} vs {xte.shape[1]})."
        )
    if yte.size == 0:
        raise DataError("Argument 'test_labels' is empty: the probe has nothing to score.")
    if np.unique(ytr).size < 2:
        raise DataError("Argument 'train_labels' holds a single class: a probe needs two or more.")
    if not cs:
        raise DataError("Argument 'cs' is empty: give at least one value of C.")

    k = num_classes if num_classes is not None else int(np.union1d(ytr, yte).size)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    # Probe problems are small: BLAS threads cost more in start-up and contention than
    # they save (10x slower on 2 shared cores, measured), so fit single-threaded.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # A small C that has not fully converged still gives a valid probe score.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if len(cs) > 1:
            search = GridSearchCV(
                pipe,
                {"logisticregression__C": list(cs)},
                cv=_cv_splitter(ytr, cv_folds, seed),
                scoring="accuracy",
                n_jobs=1,
            )
            search.fit(xtr, ytr)
            best_c = float(search.best_params_["logisticregression__C"])
            model = search.best_estimator_
        else:
            best_c = float(cs[0])
            model = pipe.set_params(logisticregression__C=best_c).fit(xtr, ytr)
    acc = float(np.mean(model.predict(xte) == yte))
    majority = float(np.bincount(np.unique(yte, return_inverse=True)[1]).max() / yte.size)
    return {
        "acc": acc,
        "chance_majority": majority,
        "chance_uniform": 1.0 / k,
        "C": best_c,
        "n_train": int(ytr.size),
        "n_test": int(yte.size),
        "num_classes": int(k),
    }


def group_split_probe(
    feats: Any,
    labels: Any,
    groups: Any,
    *,
    frac: float = 0.5,
    seed: int = 0,
    **probe_kwargs: Any,
) -> dict[str, Any]:
    """Probe ``labels`` from ``feats`` with a per-group split (see :func:`split_per_group`).

    Identity leakage is ``group_split_probe(f_exp, identity, identity)``; pose leakage
    is ``group_split_probe(f_exp, pose_bin, identity)``, so both probes are scored on
    the same unseen-sample half of every test identity.

    Args:
        feats: features, shape (N, D).
        labels: what the probe predicts, shape (N,).
        groups: the grouping used for the split (identity), shape (N,).
        frac: fraction of each group's samples used to fit.
        seed: seed of the split and of the probe.
        **probe_kwargs: passed on to :func:`linear_probe_accuracy`.
    """
    x = _as_features(feats, "feats")
    y = as_label_array(labels, "labels")
    if x.shape[0] != y.size:
        raise DataError(
            f"Arguments 'feats' and 'labels' differ in length ({x.shape[0]} vs {y.size})."
        )
    fit_idx, score_idx = split_per_group(groups, frac=frac, seed=seed)
    if fit_idx.size + score_idx.size != y.size:
        raise DataError(
            f"Argument 'groups' has {fit_idx.size + score_idx.size} values but there are {y.size} samples."
        )
    if score_idx.size == 0:
        raise DataError("Argument 'groups' leaves no samples to score: every group has one sample.")
    return linear_probe_accuracy(
        x[fit_idx], y[fit_idx], x[score_idx], y[score_idx], seed=seed, **probe_kwargs
    )
