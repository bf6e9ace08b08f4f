"""Tests of the Table 1 protocol: cross-validated linear SVMs from code blocks to factors."""

from __future__ import annotations

import numpy as np
import pytest

from facefactors.evaluation.latent_svm import (
    latent_svm_folds,
    latent_svm_matrix,
    lies_within_groups,
    svm_cv_accuracy,
)

PEOPLE, PER_PERSON = 40, 10
N = PEOPLE * PER_PERSON


@pytest.fixture(scope="module")
def faces():
    """40 people x 10 images: identity, a per-image expression, a per-person trait."""
    rng = np.random.default_rng(0)
    identity = np.repeat(np.arange(PEOPLE), PER_PERSON)
    expression = rng.integers(0, 4, N)
    trait = np.repeat(rng.permutation(np.arange(PEOPLE) % 2), PER_PERSON)  # 20 / 20 people
    # z_exp holds expression linearly: one-hot through a random 4 -> 8 map, plus noise.
    z_exp = np.eye(4)[expression] @ rng.normal(size=(4, 8)) + 0.05 * rng.normal(size=(N, 8))
    # z_id is a random vector per person (it says nothing about the trait beyond who it is).
    z_id = rng.normal(size=(PEOPLE, 64))[identity] + 0.05 * rng.normal(size=(N, 64))
    return {
        "identity": identity,
        "expression": expression,
        "trait": trait,
        "z_exp": z_exp,
        "z_id": z_id,
        "noise": rng.normal(size=(N, 8)),
    }


def test_linear_code_is_read_and_random_code_is_at_chance(faces):
    out = latent_svm_matrix(
        {"z_exp": faces["z_exp"], "noise": faces["noise"]},
        {"expression": faces["expression"]},
    )
    exp = out["z_exp"]["expression"]
    assert set(exp) == {"acc", "std", "chance", "folds", "grouped"}
    assert exp["acc"] > 0.97 and exp["folds"] == 10 and exp["grouped"] is False
    chance = np.bincount(faces["expression"]).max() / N
    noise = out["noise"]["expression"]
    assert noise["chance"] == pytest.approx(chance)
    assert abs(noise["acc"] - chance) < 0.1
    assert noise["std"] > 0


def test_chance_is_the_majority_rate_and_std_is_over_folds():
    rng = np.random.default_rng(1)
    y = np.array([0] * 70 + [1] * 30)
    x = np.c_[y + 0.01 * rng.normal(size=100), rng.normal(size=100)]
    out = latent_svm_matrix({"x": x}, {"y": y}, folds=5)["x"]["y"]
    assert out["chance"] == pytest.approx(0.7)
    assert out["acc"] == pytest.approx(1.0) and out["std"] == pytest.approx(0.0)
    # On a noise code the summary is the mean and population std (ddof 0) of the
    # per-fold accuracies on the same seeded folds.
    z = rng.normal(size=(100, 3))
    splits, _ = latent_svm_folds(y, folds=5, seed=2)
    assert all(te.size == 20 and np.sum(y[te]) == 6 for _, te in splits)  # stratified
    accs = svm_cv_accuracy(z, y, splits)
    noisy = latent_svm_matrix({"z": z}, {"y": y}, folds=5, seed=2)["z"]["y"]
    assert noisy["acc"] == pytest.approx(accs.mean())
    assert noisy["std"] == pytest.approx(np.std(accs, ddof=0))
    assert noisy["std"] != pytest.approx(np.std(accs, ddof=1))


def test_grouped_folds_never_share_a_person(faces):
    g = faces["identity"]
    for labels in (faces["expression"], faces["trait"]):
        splits, grouped = latent_svm_folds(labels, folds=10, seed=3, groups=g)
        assert grouped and len(splits) == 10
        tests = np.concatenate([te for _, te in splits])
        np.testing.assert_array_equal(np.sort(tests), np.arange(N))  # each sample tested once
        for tr, te in splits:
            assert np.intersect1d(tr, te).size == 0
            assert np.intersect1d(g[tr], g[te]).size == 0
            assert np.union1d(tr, te).size == N


def test_identity_itself_uses_stratified_folds_by_image(faces):
    g = faces["identity"]
    assert lies_within_groups(g, g)
    assert not lies_within_groups(faces["expression"], g)
    splits, grouped = latent_svm_folds(g, folds=10, groups=g)
    assert not grouped
    for tr, te in splits:
        # Every test person has training images (stratified: 9 of 10 per fold).
        assert set(g[te]) <= set(g[tr])
        assert np.all(np.bincount(g[tr], minlength=PEOPLE) == PER_PERSON - 1)
    out = latent_svm_matrix(
        {"z_id": faces["z_id"], "z_exp": faces["z_exp"]},
        {"identity": g},
        groups=g,
    )
    assert out["z_id"]["identity"]["grouped"] is False
    assert out["z_id"]["identity"]["acc"] > 0.95
    assert out["z_exp"]["identity"]["acc"] < 0.15  # chance is 1/40


def test_grouping_stops_recognising_the_person_instead_of_the_factor(faces):
    # z_id knows who each person is but nothing about the per-person trait. With
    # folds by image the SVM memorises person -> trait and looks informative; with
    # grouped folds the test people are new and it falls to chance.
    codes, factors = {"z_id": faces["z_id"]}, {"trait": faces["trait"]}
    by_image = latent_svm_matrix(codes, factors)["z_id"]["trait"]
    by_person = latent_svm_matrix(codes, factors, groups=faces["identity"])["z_id"]["trait"]
    assert by_image["acc"] > 0.9 and by_image["grouped"] is False
    assert by_person["grouped"] is True and by_person["acc"] < 0.75


def test_folds_shrink_to_what_the_classes_can_fill():
    y = np.repeat(np.arange(6), 4)  # 4 samples per class
    splits, grouped = latent_svm_folds(y, folds=10)
    assert len(splits) == 4 and not grouped
    # The largest class bounds the folds, not the smallest: a 3-sample class is
    # just missing from some test folds.
    y = np.repeat([0, 1, 2], [12, 3, 3])
    splits, _ = latent_svm_folds(y, folds=10)
    assert len(splits) == 10
    np.testing.assert_array_equal(np.sort(np.concatenate([te for _, te in splits])), np.arange(18))
    groups = np.repeat(np.arange(3), 8)
    splits, grouped = latent_svm_folds(np.tile([0, 1], 12), folds=10, groups=groups)
    assert grouped and len(splits) == 3


def test_same_seed_same_result(faces):
    args = ({"z": faces["noise"]}, {"e": faces["expression"]})
    assert latent_svm_matrix(*args, seed=5) == latent_svm_matrix(*args, seed=5)


@pytest.mark.parametrize(
    ("codes", "factors", "match"),
    [
        ({"z": np.zeros((20, 2))}, {"f": np.zeros(20, int)}, r"'factors\['f'\]' is constant"),
        ({"z": np.zeros((20, 2)), "w": np.zeros((19, 2))}, {"f": np.arange(20) % 2}, "differ"),
        ({"z": np.zeros(20)}, {"f": np.arange(20) % 2}, r"'codes\['z'\]' must be a"),
        ({"z": np.zeros((20, 2))}, {"f": np.linspace(0, 1, 20)}, "discretise"),
        ({"z": np.zeros((20, 2))}, {"f": np.arange(19) % 2}, r"'factors\['f'\]' has 19"),
        ({}, {"f": np.arange(20) % 2}, "'codes' is empty"),
        ({"z": np.zeros((20, 2))}, {}, "'factors' is empty"),
    ],
    ids=[
        "constant",
        "lengths",
        "codes-1d",
        "continuous",
        "factor-length",
        "no-codes",
        "no-factors",
    ],
)
def test_bad_inputs_raise_value_error(codes, factors, match):
    with pytest.raises(ValueError, match=match):
        latent_svm_matrix(codes, factors)


def test_bad_fold_options_raise_value_error():
    with pytest.raises(ValueError, match="'folds'"):
        latent_svm_folds(np.arange(20) % 2, folds=1)
    with pytest.raises(ValueError, match="'groups'"):
        latent_svm_folds(np.arange(20) % 2, groups=np.arange(19))
