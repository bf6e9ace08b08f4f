"""Tests of the DCI, MIG and SAP disentanglement scores.

Hand cases pin the formulas (entropy bases, weights, the top-two gap); toy codes
built from known factors pin the end-to-end behaviour each score is meant to have.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from facefactors.errors import DataError
from facefactors.evaluation.disentanglement import (
    ScoreInputError,
    dci,
    dci_from_importance,
    discretize,
)
from facefactors.evaluation.mig_sap import (
    discrete_mutual_info,
    mig,
    mig_per_factor,
    mutual_info_matrix,
    sap,
    sap_score_matrix,
    top_two_gap,
)

LOG2_3 = math.log(3) / math.log(2)

# --------------------------------------------------------------------------- DCI by hand


@pytest.mark.parametrize(
    "r",
    [np.eye(3), np.eye(4)[[2, 0, 3, 1]], np.diag([5.0, 0.1, 2.0])],
    ids=["identity", "permutation", "scaled-diagonal"],
)
def test_dci_one_code_per_factor_is_perfect(r):
    out = dci_from_importance(r)
    assert out["disentanglement"] == pytest.approx(1.0)
    assert out["completeness"] == pytest.approx(1.0)


def test_dci_uniform_importance_is_zero():
    out = dci_from_importance(np.ones((4, 3)))
    assert out["disentanglement"] == pytest.approx(0.0, abs=1e-12)
    assert out["completeness"] == pytest.approx(0.0, abs=1e-12)


def test_dci_two_by_two_by_hand():
    # R = [[3, 1], [0, 2]]: codes in rows, factors in columns.
    # Row 0: P = (3/4, 1/4), H_2 = -(3/4 log2 3/4 + 1/4 log2 1/4) = 2 - 3/4 log2 3 = 0.811278.
    # Row 1: P = (0, 1), H_2 = 0.  Weights rho = (4/6, 2/6).
    # D = 4/6 (1 - 0.811278) + 2/6 (1 - 0) = 0.459148.
    # Column 0: (1, 0), H_2 = 0.  Column 1: (1/3, 2/3), H_2 = log2 3 - 2/3 = 0.918296.
    # C = ((1 - 0) + (1 - 0.918296)) / 2 = 0.540852.
    h_row0 = 2 - 0.75 * LOG2_3
    h_col1 = LOG2_3 - 2 / 3
    out = dci_from_importance(np.array([[3.0, 1.0], [0.0, 2.0]]))
    assert out["disentanglement"] == pytest.approx(4 / 6 * (1 - h_row0) + 2 / 6, abs=1e-9)
    assert out["disentanglement"] == pytest.approx(0.459148, abs=1e-6)
    assert out["completeness"] == pytest.approx((1 + 1 - h_col1) / 2, abs=1e-9)
    assert out["completeness"] == pytest.approx(0.540852, abs=1e-6)


def test_dci_entropy_bases_and_plain_mean_completeness():
    # D = 3 codes, K = 2 factors; factor 1 is split over codes 1 and 2.
    # Every row is one-hot, so D = 1 (with base K = 2 or any base).
    # Column 1 is (0, 1/2, 1/2): H_3 = log 2 / log 3 = 0.630930, so C_1 = 0.369070;
    # in base 2 it would be 0 (a swapped base gives C = 0.5).
    # C is the plain mean (1 + 0.369070) / 2 = 0.684535, not disentanglement_lib's
    # importance-weighted mean (4/6 * 1 + 2/6 * 0.369070 = 0.789690).
    out = dci_from_importance(np.array([[4.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    assert out["disentanglement"] == pytest.approx(1.0)
    assert out["completeness"] == pytest.approx((1 + 1 - math.log(2) / math.log(3)) / 2)
    assert out["completeness"] == pytest.approx(0.684535, abs=1e-6)


def test_dci_zero_rows_do_not_count_and_all_zero_scores_zero():
    out = dci_from_importance(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    assert out == pytest.approx({"disentanglement": 1.0, "completeness": 1.0})
    assert dci_from_importance(np.zeros((3, 2))) == {"disentanglement": 0.0, "completeness": 0.0}


@pytest.mark.parametrize(
    "r", [np.ones(3), np.ones((1, 3)), np.ones((3, 1)), -np.eye(2), np.full((2, 2), np.nan)]
)
def test_dci_from_importance_rejects_bad_matrices(r):
    with pytest.raises(ValueError, match="'importance'"):
        dci_from_importance(r)


# --------------------------------------------------------------------------- discretize and MI


def test_discretize_equal_width_bins_with_max_in_last_bin():
    # Edges 0, 1.8, 3.6, 5.4, 7.2, 9: two integers per bin, and 9 in bin 4, not 5.
    np.testing.assert_array_equal(discretize(np.arange(10), bins=5), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    x = np.random.default_rng(0).normal(size=(500, 3))
    x[:, 2] = 7.0
    b = discretize(x, bins=20)
    assert b.shape == (500, 3) and b.dtype == np.int64
    assert b[:, :2].min() == 0 and b[:, :2].max() == 19
    assert np.unique(b[:, 2]).size == 1  # a constant column is one bin


def test_mutual_info_by_hand():
    f = np.array([0, 0, 1, 1])
    assert discrete_mutual_info(f, f) == pytest.approx(math.log(2))  # I(f; f) = H(f)
    assert discrete_mutual_info(f, [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    # Joint (f, c) with c = (0, 0, 0, 1): p(0,0) = 1/2, p(1,0) = 1/4, p(1,1) = 1/4;
    # p(f) = (1/2, 1/2), p(c) = (3/4, 1/4):
    # I = 1/2 log(4/3) + 1/4 log(2/3) + 1/4 log 2 = 3/2 log 2 - 3/4 log 3.
    expected = 1.5 * math.log(2) - 0.75 * math.log(3)
    assert discrete_mutual_info(f, [0, 0, 0, 1]) == pytest.approx(expected)
    assert discrete_mutual_info([5, 5, 9, 9], [7, 7, 7, -1]) == pytest.approx(expected)


def test_mutual_info_matches_sklearn_on_random_labels():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 6, 300), rng.integers(0, 4, 300)
    assert discrete_mutual_info(a, b) == pytest.approx(mutual_info_score(a, b))


def test_mig_by_hand():
    f = np.array([[0], [0], [1], [1]])
    codes = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # Code 0 equals the factor: I = H = log 2. Code 1 is (0, 0, 0, 1): I = 3/2 log 2 - 3/4 log 3.
    # MIG = (log 2 - I_1) / log 2 = 3/4 log2 3 - 1/2 = 0.688722.
    m = mutual_info_matrix(codes, f, bins=2)
    np.testing.assert_allclose(m[:, 0], [math.log(2), 1.5 * math.log(2) - 0.75 * math.log(3)])
    assert mig(codes, f, bins=2) == pytest.approx(0.75 * LOG2_3 - 0.5)
    assert mig(codes, f, bins=2) == pytest.approx(0.688722, abs=1e-6)
    # A second code equal to the factor closes the gap.
    assert mig(np.c_[codes[:, 0], codes[:, 0] * 3 + 1], f, bins=2) == pytest.approx(0.0, abs=1e-12)


def test_top_two_gap_per_column():
    np.testing.assert_allclose(
        top_two_gap(np.array([[0.1, 0.9], [0.7, 0.8], [0.2, 0.0]])), [0.5, 0.1]
    )


# --------------------------------------------------------------------------- toy codes

N, K, CLASSES = 1000, 3, 4


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    f = rng.integers(0, CLASSES, (N, K))

    def jitter(v):
        return v + 0.01 * rng.normal(size=v.shape)

    return {
        "factors": f,
        # Codes 0-2 hold factors 2, 0, 1; codes 3-4 are noise.
        "perm": np.c_[jitter(f[:, [2, 0, 1]].astype(float)), rng.normal(size=(N, 2))],
        # Factor 0 is held twice (codes 0 and 1).
        "dup": jitter(f[:, [0, 0, 1, 2]].astype(float)),
        # Code 0 holds factors 0 and 1 together (16 values, distinct in 20 bins).
        "mix": np.c_[
            jitter(4.0 * f[:, 0] + f[:, 1]), jitter(f[:, 2] * 1.0), rng.normal(size=(N, 2))
        ],
        "noise": rng.normal(size=(N, 4)),
    }


def test_permuted_factors_score_high(toy):
    f, x = toy["factors"], toy["perm"]
    out = dci(x, f)
    assert out["disentanglement"] > 0.95
    assert out["completeness"] > 0.95
    assert out["informativeness"] > 0.95
    lasso = dci(x, f, importance="lasso")
    assert lasso["disentanglement"] > 0.9 and lasso["completeness"] > 0.9
    assert lasso["informativeness"] > 0.95
    # Noise codes take a little MI from 20-bin estimation bias, so "near 1" is 0.95.
    assert mig(x, f) > 0.95
    # Each factor's best code is perfect and its runner-up (noise) near chance 1/4,
    # so SAP is near its ceiling 1 - 1/4.
    s = sap_score_matrix(x, f)
    np.testing.assert_allclose(s[[1, 2, 0], [0, 1, 2]], 1.0)
    assert sap(x, f) > 0.65


def test_duplicated_factor_has_no_gap(toy):
    f, x = toy["factors"], toy["dup"]
    gaps = mig_per_factor(x, f)
    assert gaps[0] < 0.02  # two codes with the same MI
    assert np.all(gaps[1:] > 0.95)
    sap_gaps = top_two_gap(sap_score_matrix(x, f))
    assert sap_gaps[0] < 0.02
    assert np.all(sap_gaps[1:] > 0.65)  # ceiling 1 - chance = 0.75
    out = dci(x, f)
    assert out["completeness"] < 0.9  # factor 0's importance is split over two codes
    assert out["disentanglement"] > 0.95  # each code still serves one factor


def test_code_with_two_factors_lowers_dci_disentanglement_not_mig(toy):
    f, x = toy["factors"], toy["mix"]
    out = dci(x, f)
    assert out["disentanglement"] < 0.75  # code 0 spreads over factors 0 and 1
    assert out["completeness"] > 0.95
    assert mig(x, f) > 0.95  # MIG does not see it (documented)


def test_noise_codes_score_low(toy):
    f, x = toy["factors"], toy["noise"]
    out = dci(x, f)
    assert out["informativeness"] < 0.35  # chance is 1/4
    assert out["disentanglement"] < 0.2
    assert mig(x, f) < 0.05
    assert sap(x, f) < 0.06


def test_sap_reads_many_class_factor_from_one_dimension_and_ignores_scale():
    rng = np.random.default_rng(3)
    f = rng.integers(0, 7, (600, 1))
    x = np.c_[f + 0.01 * rng.normal(size=(600, 1)), rng.normal(size=(600, 1))]
    s = sap_score_matrix(x, f)
    assert s.shape == (2, 1)
    assert s[0, 0] > 0.98  # one-vs-rest at C = 0.01 gets about 0.3-0.6 here
    assert s[1, 0] < 0.3
    assert sap(x * 1e-4, f) == pytest.approx(sap(x, f))  # codes are standardised
    # disentanglement_lib's settings run and agree on a binary factor.
    fb = (f > 3).astype(int)
    assert sap(x, fb, multi_class="ovr", c=0.01) == pytest.approx(sap(x, fb), abs=0.02)


# --------------------------------------------------------------------------- bad inputs


def test_score_input_error_is_data_and_value_error():
    assert issubclass(ScoreInputError, DataError) and issubclass(ScoreInputError, ValueError)


@pytest.mark.parametrize("score", [dci, mig, sap])
def test_constant_factor_is_rejected(score):
    rng = np.random.default_rng(0)
    f = np.c_[rng.integers(0, 2, 50), np.full(50, 3)]
    with pytest.raises(ValueError, match=r"'factors' column 1 is constant"):
        score(rng.normal(size=(50, 3)), f)


@pytest.mark.parametrize("score", [dci, mig, sap])
def test_single_code_is_rejected(score):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"'codes' has a single column"):
        score(rng.normal(size=(50, 1)), rng.integers(0, 2, (50, 2)))


def test_dci_needs_two_factors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"'factors' has a single column"):
        dci(rng.normal(size=(50, 3)), rng.integers(0, 2, (50, 1)))


@pytest.mark.parametrize(
    ("codes", "factors", "match"),
    [
        (np.zeros(10), np.zeros((10, 2), int), "'codes' must be a"),
        (np.zeros((10, 2)), np.arange(10), "'factors' must be a"),
        (np.zeros((10, 2)), np.zeros((9, 2), int), "'factors' has 9 samples"),
        (np.full((10, 2), np.nan), np.zeros((10, 2), int), "'codes' holds NaN"),
        (np.zeros((10, 2)), np.linspace(0, 1, 20).reshape(10, 2), "discretize"),
    ],
    ids=["codes-1d", "factors-1d", "length", "nan", "continuous-factor"],
)
def test_bad_shapes_and_values_are_rejected(codes, factors, match):
    for score in (dci, mig, sap):
        with pytest.raises(ValueError, match=match):
            score(codes, factors)


def test_bad_options_are_rejected():
    rng = np.random.default_rng(0)
    x, f = rng.normal(size=(40, 2)), rng.integers(0, 2, (40, 2))
    with pytest.raises(ValueError, match="'importance'"):
        dci(x, f, importance="forest")
    with pytest.raises(ValueError, match="'train_frac'"):
        sap(x, f, train_frac=1.0)
    with pytest.raises(ValueError, match="'bins'"):
        discretize(x, bins=0)
