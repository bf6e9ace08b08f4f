"""MIG and SAP, from their definitions (Chen et al. 2018; Kumar et al. 2018).

Inputs are checked and discretised by :mod:`facefactors.evaluation.disentanglement`,
which also holds DCI; see it for the conventions (codes (N, D) float, factors
(N, K) discrete ints).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from facefactors.evaluation.disentanglement import (
    DEFAULT_BINS,
    ScoreInputError,
    _check_train_classes,
    _need_two,
    _standardise,
    _train_test_split,
    as_codes,
    as_factors,
    discretize,
)


def discrete_mutual_info(a: Any, b: Any) -> float:
    """Mutual information I(a; b) in nats of two discrete label vectors of shape (N,).

    I = Σ_ij p_ij log(p_ij / (p_i p_j)) over the empirical joint distribution (the
    plug-in estimate, as sklearn's ``mutual_info_score``). I(a; a) is the entropy H(a).
    """
    ia = np.unique(np.asarray(a), return_inverse=True)[1].reshape(-1)
    ib = np.unique(np.asarray(b), return_inverse=True)[1].reshape(-1)
    if ia.size != ib.size or ia.size == 0:
        raise ScoreInputError(
            f"Arguments 'a' and 'b' must be non-empty, of one length ({ia.size}, {ib.size})."
        )
    na, nb = int(ia.max()) + 1, int(ib.max()) + 1
    joint = np.bincount(ia * nb + ib, minlength=na * nb).reshape(na, nb) / ia.size
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(max(np.sum(joint[nz] * np.log(joint[nz] / outer[nz])), 0.0))


def mutual_info_matrix(codes: Any, factors: Any, bins: int = DEFAULT_BINS) -> np.ndarray:
    """I(discretised code d; factor k) in nats, shape (D, K); codes binned with :func:`discretize`."""
    x = as_codes(codes)
    y = as_factors(factors, x.shape[0])
    xd = discretize(x, bins)
    d, k = x.shape[1], y.shape[1]
    return np.array([[discrete_mutual_info(xd[:, i], y[:, j]) for j in range(k)] for i in range(d)])


def top_two_gap(m: np.ndarray) -> np.ndarray:
    """Per column, the largest value minus the second largest, shape (K,)."""
    s = np.sort(m, axis=0)
    return s[-1] - s[-2]


def mig_per_factor(codes: Any, factors: Any, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Mutual information gap of each factor: (I_top1 − I_top2) / H(factor), shape (K,).

    I_top1 and I_top2 are the two largest of I(code_d; factor_k) over codes d (see
    :func:`mutual_info_matrix`). Each value lies in [0, 1]: 1 when one code holds
    all of the factor's information and no other code holds any.
    """
    x = as_codes(codes)
    _need_two(x.shape[1], "codes", "MIG")
    y = as_factors(factors, x.shape[0])
    m = mutual_info_matrix(x, y, bins)
    h = np.array([discrete_mutual_info(y[:, k], y[:, k]) for k in range(y.shape[1])])
    return np.clip(top_two_gap(m) / h, 0.0, 1.0)


def mig(codes: Any, factors: Any, bins: int = DEFAULT_BINS) -> float:
    """MIG of Chen et al. (2018): the mean over factors of :func:`mig_per_factor`.

    Codes (N, D), D ≥ 2, are discretised into ``bins`` equal-width bins (20 in
    disentanglement_lib); factors are discrete, (N, K). MIG does not penalise one
    code carrying two factors (it is top-1 for both); DCI disentanglement does.
    """
    return float(np.mean(mig_per_factor(codes, factors, bins)))


SapMultiClass = Literal["crammer_singer", "ovr"]


def sap_score_matrix(
    codes: Any,
    factors: Any,
    *,
    train_frac: float = 0.8,
    seed: int = 0,
    c: float = 1.0,
    multi_class: SapMultiClass = "crammer_singer",
) -> np.ndarray:
    """Held-out accuracy of a 1-d linear SVM of each factor from each single code.

    Each (code d, factor k) pair gets ``LinearSVC(C=c, class_weight="balanced")``
    fitted on code d alone over a train split and scored on the rest. Each code
    dimension is first standardised with train statistics, so the score does not
    depend on a code's scale through the fixed C.

    disentanglement_lib uses ``multi_class="ovr", c=0.01`` on raw codes (pass those
    to reproduce it up to the standardisation). On one dimension a one-vs-rest SVM
    cannot carve out the middle classes of a many-class factor: on a perfect
    4-to-7-class code its accuracy falls anywhere in 0.3-1.0 depending on the draw.
    The default Crammer-Singer SVM trains the classes jointly, so it learns the
    ordered intervals a single dimension can express (accuracy 1.0 on those codes);
    for binary factors the two agree. An uninformative code still scores about
    chance, so the best SAP of a factor is about 1 − chance (0.75 for 4 balanced
    classes), as in disentanglement_lib.

    Args:
        codes: shape (N, D).
        factors: discrete labels, shape (N, K).
        train_frac: fraction of samples used to fit (a seeded random split).
        seed: seed of the split and the solver.
        c: the SVM's C.
        multi_class: ``"crammer_singer"`` or ``"ovr"`` (LinearSVC's option).

    Returns:
        Held-out accuracies, shape (D, K).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC
    from threadpoolctl import threadpool_limits

    x = as_codes(codes)
    y = as_factors(factors, x.shape[0])
    if multi_class not in ("crammer_singer", "ovr"):
        raise ScoreInputError(
            f"Argument 'multi_class' must be 'crammer_singer' or 'ovr', got {multi_class!r}."
        )
    tr, te = _train_test_split(x.shape[0], train_frac, seed)
    x = _standardise(x, tr)
    s = np.zeros((x.shape[1], y.shape[1]))
    opts = {"C": c, "class_weight": "balanced", "multi_class": multi_class, "max_iter": 5000}
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(y.shape[1]):
            _check_train_classes(y[tr, k], k)
            for d in range(x.shape[1]):
                clf = LinearSVC(random_state=seed, **opts).fit(x[tr, d : d + 1], y[tr, k])
                s[d, k] = np.mean(clf.predict(x[te, d : d + 1]) == y[te, k])
    return s


def sap(
    codes: Any,
    factors: Any,
    *,
    train_frac: float = 0.8,
    seed: int = 0,
    c: float = 1.0,
    multi_class: SapMultiClass = "crammer_singer",
) -> float:
    """SAP of Kumar et al. (2018): mean over factors of the top-two accuracy gap.

    The per-factor gaps are ``top_two_gap(sap_score_matrix(...))``; codes need D ≥ 2;
    see :func:`sap_score_matrix` for the arguments.
    """
    x = as_codes(codes)
    _need_two(x.shape[1], "codes", "SAP")
    m = sap_score_matrix(x, factors, train_frac=train_frac, seed=seed, c=c, multi_class=multi_class)
    return float(np.mean(top_two_gap(m)))
