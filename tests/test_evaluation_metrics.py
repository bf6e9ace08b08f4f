"""Classification metrics, pose subsets and seed summaries against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facefactors.errors import DataError
from facefactors.evaluation.metrics import (
    accuracy,
    confusion_matrix,
    f1_macro,
    fmt_best_mean_std,
    mean_class_accuracy,
    per_class_accuracy,
    pose_subset_accuracy,
    seed_summary,
)

# (true, pred) pairs: (0,0) (1,1) (2,1) (2,2) (2,2) (0,2) (0,0) -> 5 of 7 correct.
PRED = [0, 1, 1, 2, 2, 2, 0]
TRUE = [0, 1, 2, 2, 2, 0, 0]
YAW = [5.0, -15.0, 25.0, -35.0, 45.0, 12.0, 0.0]


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(PRED, TRUE, 3)
    expected = np.array([[2, 0, 1], [0, 1, 0], [0, 1, 2]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64
    assert cm.sum() == 7


def test_accuracy_and_tensor_input():
    assert accuracy(PRED, TRUE) == pytest.approx(5 / 7)
    assert accuracy(torch.tensor(PRED), torch.tensor(TRUE)) == pytest.approx(5 / 7)


def test_per_class_and_mean_class_accuracy():
    np.testing.assert_allclose(per_class_accuracy(PRED, TRUE, 3), [2 / 3, 1.0, 2 / 3])
    # A class with no test samples has an undefined recall, not 0.
    rec4 = per_class_accuracy(PRED, TRUE, 4)
    assert math.isnan(rec4[3])
    assert mean_class_accuracy(PRED, TRUE, 4) == pytest.approx(7 / 9)


def test_f1_macro_hand_computed():
    # class 0: tp 2, fp 0, fn 1 -> 4/5; class 1: tp 1, fp 1, fn 0 -> 2/3;
    # class 2: tp 2, fp 1, fn 1 -> 2/3.
    expected = (0.8 + 2 / 3 + 2 / 3) / 3
    assert f1_macro(PRED, TRUE, 3) == pytest.approx(expected)
    # An extra class absent from both pred and true is left out, not counted as 0.
    assert f1_macro(PRED, TRUE, 5) == pytest.approx(expected)


def test_pose_subsets_hand_computed():
    out = pose_subset_accuracy(PRED, TRUE, YAW, thresholds=(10, 20, 30, 40, 50))
    assert list(out) == ["all", ">10", ">20", ">30", ">40", ">50"]
    # correct = [T, T, F, T, T, F, T]; |yaw| = 5 15 25 35 45 12 0
    assert out["all"] == {"n": 7, "acc": pytest.approx(5 / 7)}
    assert out[">10"] == {"n": 5, "acc": pytest.approx(3 / 5)}  # samples 1 2 3 4 5
    assert out[">20"] == {"n": 3, "acc": pytest.approx(2 / 3)}  # samples 2 3 4
    assert out[">30"] == {"n": 2, "acc": 1.0}
    assert out[">40"] == {"n": 1, "acc": 1.0}
    assert out[">50"] == {"n": 0, "acc": None}


def test_pose_subset_threshold_is_strict():
    out = pose_subset_accuracy([0, 0], [0, 1], [10.0, -10.5], thresholds=(10,))
    assert out[">10"] == {"n": 1, "acc": 0.0}


def test_seed_summary_uses_sample_std():
    s = seed_summary([0.80, 0.84, 0.82])
    assert s["best"] == pytest.approx(0.84)
    assert s["mean"] == pytest.approx(0.82)
    # deviations -0.02, +0.02, 0 -> sum of squares 0.0008 / (3 - 1) -> std 0.02
    assert s["std"] == pytest.approx(0.02)
    assert s["n"] == 3
    assert fmt_best_mean_std(s) == "84.00 (82.00±2.00)"
    assert seed_summary([0.5])["std"] == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: accuracy([0, 1], [0]),
        lambda: confusion_matrix([0, 3], [0, 1], 3),
        lambda: accuracy(np.zeros((2, 2)), np.zeros((2, 2))),
        lambda: accuracy([0.5], [0]),
        lambda: accuracy([], []),
        lambda: pose_subset_accuracy([0], [0], [1.0, 2.0]),
        lambda: pose_subset_accuracy([0], [0], [float("nan")]),
        lambda: seed_summary([]),
        lambda: fmt_best_mean_std({"best": 1.0, "mean": 1.0}),
    ],
)
def test_bad_input_raises_data_error(call):
    with pytest.raises(DataError):
        call()
