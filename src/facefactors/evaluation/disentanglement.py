"""Disentanglement scores of a representation against known generative factors.

Scores follow their definitions as implemented in disentanglement_lib
(Locatello et al. 2019): DCI (Eastwood & Williams 2018) here, MIG (Chen et al.
2018) and SAP (Kumar et al. 2018) in :mod:`facefactors.evaluation.mig_sap`. All are pure functions of ``codes``, float (N, D),
one column per code dimension, and ``factors``, int (N, K), one column per factor
of discrete labels (any whole numbers). Continuous factors (yaw, lighting, ...)
must be discretised first, e.g. with :func:`discretize` (equal-width histogram
bins, as disentanglement_lib does); non-whole-number factors are rejected.

Degenerate inputs raise :class:`ScoreInputError`, both a
:class:`~facefactors.errors.DataError` (the CLI prints it as one sentence) and a
:class:`ValueError`: mismatched shapes, a constant factor (zero entropy: every
score would divide by 0 or be vacuous), one code dimension for MIG and SAP (no
second code to form the gap), fewer than two codes or factors for DCI (entropy
bases D and K must be at least 2).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from facefactors.errors import DataError

DEFAULT_BINS = 20


class ScoreInputError(DataError, ValueError):
    """Inputs a disentanglement score cannot be computed on; the message names the argument."""


def as_codes(codes: Any, name: str = "codes") -> np.ndarray:
    """Validate a code matrix and return it as float64 of shape (N, D)."""
    if hasattr(codes, "detach"):  # torch tensors, without importing torch here
        codes = codes.detach().float().cpu().numpy()
    arr = np.asarray(codes, dtype=np.float64)
    if arr.ndim != 2:
        raise ScoreInputError(f"Argument '{name}' must be a (N, D) matrix, got shape {arr.shape}.")
    if arr.shape[0] < 2:
        raise ScoreInputError(
            f"Argument '{name}' holds {arr.shape[0]} samples; scores need 2 or more."
        )
    if not np.all(np.isfinite(arr)):
        raise ScoreInputError(f"Argument '{name}' holds NaN or infinite values.")
    return arr


def whole_labels(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as int64 labels, or ScoreInputError if a value is not a whole number.

    Raises:
        ScoreInputError: naming ``name``, and pointing at :func:`discretize`.
    """
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ScoreInputError(
                f"Argument '{name}' must hold discrete whole-number labels; discretise "
                "continuous factors first (facefactors.evaluation.disentanglement.discretize)."
            )
    return arr.astype(np.int64)


def as_factors(factors: Any, n: int | None = None, name: str = "factors") -> np.ndarray:
    """Validate whole-number factors of shape (N, K) (N = ``n`` if given); return int64.

    Raises:
        ScoreInputError: on a wrong shape, non-integer values, or a constant column.
    """
    if hasattr(factors, "detach"):
        factors = factors.detach().cpu().numpy()
    arr = np.asarray(factors)
    if arr.ndim != 2:
        raise ScoreInputError(
            f"Argument '{name}' must be a (N, K) matrix of discrete labels, got shape "
            f"{arr.shape} (for one factor pass factor[:, None])."
        )
    if n is not None and arr.shape[0] != n:
        raise ScoreInputError(f"Argument '{name}' has {arr.shape[0]} samples but 'codes' has {n}.")
    arr = whole_labels(arr, name)
    for k in range(arr.shape[1]):
        if np.all(arr[:, k] == arr[0, k]):
            raise ScoreInputError(
                f"Argument '{name}' column {k} is constant: a factor with a single value "
                "has zero entropy and cannot be scored."
            )
    return arr


def discretize(values: Any, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin each column into ``bins`` equal-width bins between its min and max.

    disentanglement_lib's histogram discretiser: the edges are those of
    ``np.histogram(column, bins)``, the column maximum falls in the last bin, and a
    constant column falls in a single bin.

    Args:
        values: finite floats, shape (N,) or (N, D).
        bins: number of bins, at least 1.

    Returns:
        int64 bin indices in [0, bins), the shape of ``values``.
    """
    if bins < 1:
        raise ScoreInputError(f"Argument 'bins' must be at least 1, got {bins}.")
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ScoreInputError(f"Argument 'values' must be (N,) or (N, D), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ScoreInputError("Argument 'values' holds NaN or infinite values.")
    cols = arr.reshape(arr.shape[0], -1)
    out = np.empty(cols.shape, dtype=np.int64)
    for d in range(cols.shape[1]):
        edges = np.histogram_bin_edges(cols[:, d], bins)
        # Dropping the last edge makes the maximum land in bin `bins`, not one past it.
        out[:, d] = np.digitize(cols[:, d], edges[:-1]) - 1
    return out.reshape(arr.shape)


def _train_test_split(n: int, train_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < train_frac < 1.0:
        raise ScoreInputError(
            f"Argument 'train_frac' must lie strictly between 0 and 1, got {train_frac}."
        )
    n_train = int(np.clip(round(train_frac * n), 1, n - 1))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def _standardise(x: np.ndarray, tr: np.ndarray) -> np.ndarray:
    """Standardise columns with train statistics; a constant column becomes 0."""
    mu, sd = x[tr].mean(axis=0), x[tr].std(axis=0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def _need_two(count: int, name: str, score: str) -> None:
    if count < 2:
        raise ScoreInputError(f"Argument '{name}' has a single column: {score} needs two or more.")


def _check_train_classes(y_train: np.ndarray, k: int) -> None:
    if np.unique(y_train).size < 2:
        raise ScoreInputError(
            f"Argument 'factors' column {k} has a single value in the training split; "
            "use more samples or a larger 'train_frac'."
        )


def _entropy_columns(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy, in base ``base``, of each column of a nonnegative matrix (columns sum to 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=0) / np.log(base)


def _normalise_columns(m: np.ndarray) -> np.ndarray:
    """Each column divided by its sum; an all-zero column becomes uniform (maximal entropy)."""
    s = m.sum(axis=0, keepdims=True)
    uniform = np.full_like(m, 1.0 / m.shape[0])
    return np.where(s > 0, m / np.where(s > 0, s, 1.0), uniform)


def dci_from_importance(importance: Any) -> dict[str, float]:
    """Disentanglement and completeness from an importance matrix R.

    With P_dk = R_dk / Σ_k R_dk (code d's importance spread over factors) and
    P̃_dk = R_dk / Σ_d R_dk (factor k's importance spread over codes):

    - disentanglement = Σ_d ρ_d (1 − H_K(P_d·)), with ρ_d = Σ_k R_dk / Σ_dk R_dk;
    - completeness = (1/K) Σ_k (1 − H_D(P̃_·k)),

    H_b being the entropy in base b, so each term lies in [0, 1]. Completeness is
    the plain mean of Eastwood & Williams; disentanglement_lib weights it by each
    factor's share of importance, which is the same thing when every column of R
    sums to the same value (as gradient-boosted importances do, summing to 1).

    A code with zero importance has ρ_d = 0 and does not count; a factor with zero
    importance has completeness 0 (uniform over codes); an all-zero R scores 0 and 0.

    Args:
        importance: nonnegative R of shape (D, K), D codes by K factors, D, K ≥ 2.

    Returns:
        ``{"disentanglement", "completeness"}``, floats in [0, 1].
    """
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 2:
        raise ScoreInputError(
            f"Argument 'importance' must be a (D, K) matrix with D, K >= 2 (entropy bases), "
            f"got shape {r.shape}."
        )
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ScoreInputError("Argument 'importance' must hold finite nonnegative values.")
    d, k = r.shape
    total = r.sum()
    if total == 0:
        return {"disentanglement": 0.0, "completeness": 0.0}
    per_code = 1.0 - _entropy_columns(_normalise_columns(r.T), base=k)  # (D,)
    rho = r.sum(axis=1) / total
    per_factor = 1.0 - _entropy_columns(_normalise_columns(r), base=d)  # (K,)
    # Clip the last ulp of rounding so a perfect matrix reads exactly 1, never 1 + 1e-16.
    return {
        "disentanglement": float(np.clip(np.sum(rho * per_code), 0.0, 1.0)),
        "completeness": float(np.clip(np.mean(per_factor), 0.0, 1.0)),
    }


def importance_matrix(
    codes: Any,
    factors: Any,
    *,
    train_frac: float = 0.8,
    seed: int = 0,
    importance: Literal["gbt", "lasso"] = "gbt",
    n_estimators: int = 20,
    lasso_c: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one classifier per factor on a train split and read its code importances.

    - ``"gbt"``: sklearn ``GradientBoostingClassifier`` (depth 3), R_·k its
      ``feature_importances_`` (disentanglement_lib's choice, with 100 trees; here
      ``n_estimators``, fewer for speed).
    - ``"lasso"``: L1 multinomial logistic regression (inverse strength ``lasso_c``)
      on standardised codes, the classification analogue of Eastwood & Williams'
      lasso; R_dk is the mean |coefficient| of code d over the classes of factor k.

    ``train_frac`` of the samples (a seeded random split) fit; the rest score.

    Returns:
        ``(R, test_acc)``: R of shape (D, K), nonnegative, and the held-out accuracy
        of each factor's classifier, shape (K,).
    """
    import warnings

    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = as_codes(codes)
    y = as_factors(factors, x.shape[0])
    if importance not in ("gbt", "lasso"):
        raise ScoreInputError(
            f"Argument 'importance' must be 'gbt' or 'lasso', got {importance!r}."
        )
    tr, te = _train_test_split(x.shape[0], train_frac, seed)
    if importance == "lasso":
        x = _standardise(x, tr)  # so |coef| compares codes of different scale
    r = np.zeros((x.shape[1], y.shape[1]))
    acc = np.zeros(y.shape[1])
    # Small problems: BLAS threads cost more than they save (see probes.py).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(y.shape[1]):
            _check_train_classes(y[tr, k], k)
            if importance == "gbt":
                model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
                model.fit(x[tr], y[tr, k])
                r[:, k] = np.abs(model.feature_importances_)
            else:
                model = LogisticRegression(
                    C=lasso_c, l1_ratio=1.0, solver="saga", max_iter=2000, random_state=seed
                )
                model.fit(x[tr], y[tr, k])
                r[:, k] = np.abs(model.coef_).mean(axis=0)
            acc[k] = np.mean(model.predict(x[te]) == y[te, k])
    return r, acc


def dci(
    codes: Any,
    factors: Any,
    *,
    train_frac: float = 0.8,
    seed: int = 0,
    importance: Literal["gbt", "lasso"] = "gbt",
    n_estimators: int = 20,
    lasso_c: float = 0.1,
) -> dict[str, float]:
    """DCI of Eastwood & Williams (2018): disentanglement, completeness, informativeness.

    R comes from :func:`importance_matrix` (codes (N, D) and factors (N, K), D, K ≥ 2;
    see it for the other arguments), D and C from :func:`dci_from_importance`, and
    informativeness is the mean held-out accuracy of the per-factor classifiers
    (disentanglement_lib's ``informativeness_test``; higher is better, unlike the
    paper's prediction error).

    Returns:
        ``{"disentanglement", "completeness", "informativeness"}``, floats in [0, 1].
    """
    x = as_codes(codes)
    y = as_factors(factors, x.shape[0])
    _need_two(x.shape[1], "codes", "DCI")
    _need_two(y.shape[1], "factors", "DCI")
    kw = {"n_estimators": n_estimators, "lasso_c": lasso_c}
    r, acc = importance_matrix(x, y, train_frac=train_frac, seed=seed, importance=importance, **kw)
    out = dci_from_importance(r)
    out["informativeness"] = float(np.mean(acc))
    return out
