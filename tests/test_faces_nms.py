"""NMS in torch against a brute-force Python reference and hand-computed overlaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.faces import nms as nms_mod
from facefactors.faces.nms import batched_nms, box_overlap, nms


def _overlap_ref(a, b, mode, offset):
    """Overlap of two boxes with plain Python floats."""
    area_a = max(0.0, a[2] - a[0] + offset) * max(0.0, a[3] - a[1] + offset)
    area_b = max(0.0, b[2] - b[0] + offset) * max(0.0, b[3] - b[1] + offset)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
    inter = iw * ih
    denom = area_a + area_b - inter if mode == "union" else min(area_a, area_b)
    return inter / denom if denom > 0 else 0.0


def _nms_ref(boxes, scores, threshold, mode, offset):
    """Textbook greedy NMS: visit by (score desc, index asc), keep if no kept box overlaps."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(_overlap_ref(boxes[j], boxes[i], mode, offset) <= threshold for j in kept):
            kept.append(i)
    return kept


def _random_boxes(rng, n, extent=100.0):
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(2, 40, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_overlap_hand_computed():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [2.0, 2.0, 4.0, 4.0], [20.0, 20.0, 30.0, 30.0]])
    # Intersection 50; union 150 -> 1/3; min area 100 -> 0.5.
    # The small box lies inside a: IoU 4/100, "min" overlap 4/4 = 1.
    assert box_overlap(a, b, "union").tolist()[0] == pytest.approx([1 / 3, 0.04, 0.0])
    assert box_overlap(a, b, "min").tolist()[0] == pytest.approx([0.5, 1.0, 0.0])
    # Inclusive-pixel convention: widths 11 -> intersection 6*11, union 2*121-66.
    assert box_overlap(a, b[:1], "union", offset=1.0).item() == pytest.approx(66 / 176)


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_nms_matches_brute_force(mode, offset):
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 120))
        boxes = _random_boxes(rng, n)
        scores = rng.uniform(size=n)
        if seed % 5 == 0:  # exercise the tie-breaking by index
            scores = np.round(scores, 1)
        threshold = float(rng.uniform(0.2, 0.8))
        expected = _nms_ref(boxes.tolist(), scores.tolist(), threshold, mode, offset)
        got = nms(torch.tensor(boxes), torch.tensor(scores), threshold, mode, offset)
        assert got.tolist() == expected, f"seed {seed}"


def test_row_loop_path_matches_matrix_path(monkeypatch):
    rng = np.random.default_rng(123)
    boxes = torch.tensor(_random_boxes(rng, 300, extent=60.0))
    scores = torch.tensor(rng.uniform(size=300))
    matrix = nms(boxes, scores, 0.5)
    monkeypatch.setattr(nms_mod, "_MATRIX_MAX_BOXES", 0)
    loop = nms(boxes, scores, 0.5)
    assert loop.tolist() == matrix.tolist()
    assert loop.tolist() == _nms_ref(boxes.tolist(), scores.tolist(), 0.5, "union", 0.0)


def test_long_suppression_chain():
    # Each box overlaps only its neighbours, with scores decreasing along the chain:
    # greedy keeps every other box, which needs many fixed-point passes.
    boxes = torch.tensor([[4.0 * i, 0.0, 4.0 * i + 10.0, 10.0] for i in range(30)])
    scores = torch.linspace(1.0, 0.1, 30)
    # Neighbours (shift 4) have IoU 6/14 ~ 0.43; two apart (shift 8) 2/18 ~ 0.11.
    keep = nms(boxes, scores, 0.3)
    assert keep.tolist() == list(range(0, 30, 2))


def test_batched_nms_equals_per_group_nms():
    rng = np.random.default_rng(7)
    boxes = torch.tensor(_random_boxes(rng, 200))
    scores = torch.tensor(rng.uniform(size=200))
    groups = torch.tensor(rng.integers(0, 4, size=200))
    got = set(batched_nms(boxes, scores, groups, 0.4, "min").tolist())
    expected = set()
    for g in range(4):
        idx = torch.nonzero(groups == g)[:, 0]
        expected |= set(idx[nms(boxes[idx], scores[idx], 0.4, "min")].tolist())
    assert got == expected
    # Identical boxes in different groups never suppress each other.
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    assert sorted(batched_nms(same, torch.ones(3), torch.tensor([0, 1, 2]), 0.1).tolist()) == [
        0,
        1,
        2,
    ]


def test_empty_and_bad_mode():
    empty = torch.zeros(0, 4)
    assert nms(empty, torch.zeros(0), 0.5).numel() == 0
    assert batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0
    with pytest.raises(ValueError, match="union"):
        nms(torch.zeros(1, 4), torch.zeros(1), 0.5, mode="iou")
