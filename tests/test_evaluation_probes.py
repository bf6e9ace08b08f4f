"""Linear-probe leakage and the per-identity split."""

from __future__ import annotations

import numpy as np
import pytest

from facefactors.errors import DataError
from facefactors.evaluation.probes import (
    group_split_probe,
    linear_probe_accuracy,
    split_per_group,
)


def test_split_per_group_partitions_and_covers_every_group():
    groups = np.array([0] * 4 + [1] * 3 + [2] * 1 + [3] * 6)
    fit, score = split_per_group(groups, frac=0.5, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, score])), np.arange(groups.size))
    assert np.intersect1d(fit, score).size == 0
    # round(0.5 * 4) = 2, round(1.5) = 2, a single sample fits only, round(3) = 3.
    assert [int(np.sum(groups[fit] == g)) for g in range(4)] == [2, 2, 1, 3]
    assert [int(np.sum(groups[score] == g)) for g in range(4)] == [2, 1, 0, 3]
    again = split_per_group(groups, frac=0.5, seed=0)
    np.testing.assert_array_equal(fit, again[0])
    other = [split_per_group(groups, frac=0.5, seed=s)[0] for s in range(1, 6)]
    assert any(not np.array_equal(fit, o) for o in other)


def test_split_per_group_rejects_bad_fraction():
    with pytest.raises(DataError, match="frac"):
        split_per_group([0, 0, 1, 1], frac=1.0)


def _clusters(rng, n_per_class, k, dim, spread):
    centers = rng.normal(size=(k, dim)) * 5.0
    y = np.repeat(np.arange(k), n_per_class)
    return centers[y] + spread * rng.normal(size=(y.size, dim)), y


def test_probe_reads_separable_features():
    rng = np.random.default_rng(0)
    x, y = _clusters(rng, 40, 4, 16, 0.5)
    idx = rng.permutation(y.size)
    tr, te = idx[:80], idx[80:]
    out = linear_probe_accuracy(x[tr], y[tr], x[te], y[te], seed=0)
    assert out["acc"] >= 0.95
    assert out["chance_uniform"] == pytest.approx(0.25)
    assert out["n_train"] == 80 and out["n_test"] == 80 and out["num_classes"] == 4
    assert out["C"] in (0.01, 0.1, 1.0, 10.0)


def test_probe_on_random_features_is_near_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 16))
    y = rng.integers(0, 4, size=600)
    out = linear_probe_accuracy(x[:300], y[:300], x[300:], y[300:], seed=0)
    # Binomial sd at p=0.25, n=300 is 0.025; 0.1 is four sd.
    assert abs(out["acc"] - 0.25) < 0.1


def test_chance_levels_hand_computed():
    rng = np.random.default_rng(2)
    xtr = rng.normal(size=(6, 3))
    ytr = np.array([0, 1, 2, 0, 1, 2])
    yte = np.array([1, 1, 1, 0])  # majority class 1 holds 3 of 4 test samples
    out = linear_probe_accuracy(xtr, ytr, rng.normal(size=(4, 3)), yte, cs=(1.0,))
    assert out["chance_majority"] == pytest.approx(0.75)
    assert out["chance_uniform"] == pytest.approx(1 / 3)
    assert out["C"] == 1.0


def test_identity_leakage_via_group_split():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(8), 10)
    leaky, _ = _clusters(rng, 10, 8, 12, 0.5)  # features that encode identity
    clean = rng.normal(size=(ids.size, 12))  # features that do not
    hi = group_split_probe(leaky, ids, ids, seed=0)
    lo = group_split_probe(clean, ids, ids, seed=0)
    assert hi["acc"] >= 0.95
    assert hi["n_train"] == 40 and hi["n_test"] == 40
    assert lo["acc"] < 0.4  # chance is 1/8; a leaky feature would be near 1


def test_probe_rejects_bad_input():
    x = np.zeros((4, 2))
    with pytest.raises(DataError, match="single class"):
        linear_probe_accuracy(x, [0, 0, 0, 0], x, [0, 1, 0, 1])
    with pytest.raises(DataError, match="width"):
        linear_probe_accuracy(x, [0, 1, 0, 1], np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(DataError, match="NaN"):
        linear_probe_accuracy(np.full((4, 2), np.nan), [0, 1, 0, 1], x, [0, 1, 0, 1])
    with pytest.raises(DataError, match="groups"):
        group_split_probe(x, [0, 1, 0, 1], [0, 1, 2])
