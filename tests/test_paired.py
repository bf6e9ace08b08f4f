"""Paired, identity-clustered comparisons (facefactors.evaluation.paired)."""

from __future__ import annotations

import numpy as np
import pytest

from facefactors.evaluation import paired as P


def test_mcnemar_exact_matches_hand_computed_binomial_tails() -> None:
    # 1 item only A gets right, 6 only B: p = 2 * P(X <= 1 | n=7, 1/2) = 2 * 8/128.
    a = np.array([1, 0, 0, 0, 0, 0, 0, 1, 1], bool)
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1, 0], bool)
    r = P.mcnemar_exact(a, b)
    assert (r["a_only"], r["b_only"]) == (2, 6)
    # With a_only=2, b_only=6: p = 2 * (1 + 8 + 28) / 256.
    assert r["p"] == pytest.approx(2 * 37 / 256)
    assert P.mcnemar_exact(b, a)["p"] == r["p"]  # symmetric
    assert P.mcnemar_exact(a, a)["p"] == 1.0  # no discordant pairs
    with pytest.raises(ValueError):
        P.mcnemar_exact(a, b[:-1])


def test_bootstrap_difference_is_signed_and_its_interval_respects_identities() -> None:
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(20), 10)
    base = rng.random((3, 200)) < 0.6
    better = base.copy()
    better[:, :40] = True  # the method also gets the first four people fully right
    d = P.identity_bootstrap_diff(better, base, ids)
    assert d["mean_diff"] == pytest.approx(better.mean() - base.mean())
    assert d["mean_diff"] > 0 and d["ci95_low"] <= d["mean_diff"] <= d["ci95_high"]
    assert len(d["seed_diffs"]) == 3 and len(d["mcnemar_p"]) == 3
    swapped = P.identity_bootstrap_diff(base, better, ids)  # arguments swapped: sign flips
    assert swapped["mean_diff"] == pytest.approx(-d["mean_diff"])
    assert swapped["ci95_high"] == pytest.approx(-d["ci95_low"])
    # The gain sits in 4 of 20 people: by people it is far less certain than by faces.
    by_face = P.identity_bootstrap_diff(better, base, np.arange(200))
    assert d["ci95_high"] - d["ci95_low"] > 1.5 * (by_face["ci95_high"] - by_face["ci95_low"])


def test_per_class_shares_sum_to_the_total_and_carriers_are_named() -> None:
    rng = np.random.default_rng(1)
    labels = np.tile(np.arange(4), 50)  # 200 items, 4 classes
    ids = np.repeat(np.arange(20), 10)
    base = rng.random((2, 200)) < 0.7
    worse = base.copy()
    worse[:, labels == 0] = False  # the method loses class 0 entirely
    classes = ["neutral", "happy", "sad", "fear"]
    pc = P.per_class_diffs(worse, base, labels, ids, classes)
    total = worse.mean() - base.mean()
    assert sum(c["share"] for c in pc.values()) == pytest.approx(total)
    assert pc["neutral"]["diff"] == pytest.approx(-base[:, labels == 0].mean())
    assert pc["happy"]["diff"] == 0.0
    assert P.carriers(pc, total) == ["neutral"]
    spread = {c: {"share": total / 4} for c in classes}  # evenly spread: nobody carries it
    assert P.carriers(spread, total) == []


def test_answer_uses_the_identity_interval_and_names_the_carriers() -> None:
    from facefactors.evaluation.answers import _question_1

    m = {"accuracy": {"mean": 0.60, "n": 3}}
    b = {"accuracy": {"mean": 0.65, "n": 3}}
    m["vs_baseline"] = {
        "mean_diff": -0.05, "ci95_low": -0.09, "ci95_high": -0.01, "seed_diffs": [-0.04, -0.06],
        "mcnemar_p": [0.02, 0.2], "n": 560, "identities": 40, "carried_by": ["neutral"],
        "per_class": {"neutral": {"diff": -0.30, "ci95_low": -0.4, "ci95_high": -0.2,
                                  "share": -0.043}},
    }  # fmt: skip
    lines = _question_1("ipd", m, b, "baseline")
    assert "worse" in lines[0] and "[-9.00 pp, -1.00 pp]" in lines[0] and "40 people" in lines[0]
    assert "carried by 1 class(es): neutral -30.00 pp" in lines[1]
    m["vs_baseline"]["ci95_high"] = 0.01  # an interval over zero is no verdict
    assert "no clear difference" in _question_1("ipd", m, b, "baseline")[0]
