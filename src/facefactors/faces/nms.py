"""Greedy non-maximum suppression in pure torch (torchvision's ``nms`` is unusable here).

MTCNN uses two overlap measures between boxes ``a`` and ``b``:

- ``"union"``: intersection / (area(a) + area(b) - intersection), the usual IoU;
- ``"min"``: intersection / min(area(a), area(b)), which also removes a small box
  lying inside a bigger one (used for the final O-Net step).

Greedy NMS visits boxes by decreasing score and keeps a box unless a box kept
before it overlaps it by more than ``threshold``. The kept set is the unique
fixed point of ``keep[i] = not any(keep[j] and overlap[j, i] > t for j < i)``:
entry ``i`` only depends on entries before it, so iterating that equation from
"all kept" makes at least one more leading entry final per pass. Each pass is a
single boolean matrix-vector product, so the loop runs a handful of vectorised
passes instead of one Python iteration per kept box.
"""

from __future__ import annotations

import torch

# Above this many boxes the (N, N) overlap matrix gets large (N=4096 is 64 MiB in
# float32), so we switch to the row-at-a-time greedy loop.
_MATRIX_MAX_BOXES = 4096

_MODES = ("union", "min")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"NMS mode must be one of {_MODES}, got {mode!r}.")


def box_overlap(a: torch.Tensor, b: torch.Tensor, mode: str = "union", offset: float = 0.0):
    """Pairwise overlap of two sets of boxes.

    Args:
        a: (N, 4) boxes ``[x1, y1, x2, y2]``.
        b: (M, 4) boxes.
        mode: ``"union"`` (IoU) or ``"min"`` (intersection over the smaller area).
        offset: added to widths and heights; 1.0 reproduces the inclusive integer
            pixel convention of the original MTCNN code, 0.0 is continuous geometry.

    Returns:
        (N, M) overlaps in [0, 1] (0 where an area is empty).
    """
    _check_mode(mode)
    area_a = ((a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)).clamp(min=0)
    area_b = ((b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)).clamp(min=0)
    iw = torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0])
    ih = torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1])
    inter = (iw + offset).clamp(min=0) * (ih + offset).clamp(min=0)
    if mode == "union":
        denom = area_a[:, None] + area_b[None, :] - inter
    else:
        denom = torch.minimum(area_a[:, None], area_b[None, :])
    # An empty box overlaps nothing; avoid 0/0 = NaN.
    return torch.where(denom > 0, inter / denom.clamp(min=1e-12), torch.zeros_like(inter))


def _nms_matrix(boxes: torch.Tensor, threshold: float, mode: str, offset: float) -> torch.Tensor:
    """Fixed-point greedy NMS on boxes already sorted by decreasing score; (N,) bool keep."""
    n = boxes.shape[0]
    suppresses = box_overlap(boxes, boxes, mode, offset) > threshold
    # Only an earlier (higher-scored) box can suppress a later one.
    suppresses = torch.triu(suppresses, diagonal=1).to(torch.float32)
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for _ in range(n + 1):
        new_keep = (keep.to(torch.float32) @ suppresses) == 0
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return keep


def _nms_loop(boxes: torch.Tensor, threshold: float, mode: str, offset: float) -> torch.Tensor:
    """Row-at-a-time greedy NMS on boxes sorted by decreasing score; (N,) bool keep."""
    n = boxes.shape[0]
    keep = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    alive = torch.arange(n, device=boxes.device)
    while alive.numel() > 0:
        i = alive[0]
        keep[i] = True
        rest = alive[1:]
        ov = box_overlap(boxes[i : i + 1], boxes[rest], mode, offset)[0]
        alive = rest[ov <= threshold]
    return keep


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    threshold: float,
    mode: str = "union",
    offset: float = 0.0,
) -> torch.Tensor:
    """Greedy NMS.

    Args:
        boxes: (N, 4) boxes ``[x1, y1, x2, y2]``.
        scores: (N,) scores; ties are broken by the original index (stable sort).
        threshold: a box is removed when it overlaps a kept, higher-scored box by
            strictly more than this.
        mode: ``"union"`` or ``"min"`` (see :func:`box_overlap`).
        offset: width/height offset (see :func:`box_overlap`).

    Returns:
        (K,) int64 indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    _check_mode(mode)
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    if not sorted_boxes.is_floating_point():
        sorted_boxes = sorted_boxes.to(torch.float32)
    if order.numel() <= _MATRIX_MAX_BOXES:
        keep = _nms_matrix(sorted_boxes, threshold, mode, offset)
    else:
        keep = _nms_loop(sorted_boxes, threshold, mode, offset)
    return order[keep]


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    threshold: float,
    mode: str = "union",
    offset: float = 0.0,
) -> torch.Tensor:
    """NMS applied independently within each group (image, or image and scale).

    Boxes of different groups are shifted far apart along a diagonal so that they
    can never overlap, and one NMS call then handles every group at once.

    Args:
        boxes: (N, 4) boxes.
        scores: (N,) scores.
        groups: (N,) integer group ids.
        threshold, mode, offset: as in :func:`nms`.

    Returns:
        (K,) int64 indices of kept boxes, by decreasing score (across groups).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # The shift must exceed any box extent (plus the offset) so shifted groups are
    # disjoint; float64 keeps the shifted coordinates exact enough that overlaps
    # equal the unshifted ones to ~1e-12.
    b = boxes.to(torch.float64)
    span = float(b.max() - b.min()) + abs(offset) + 1.0
    shift = (groups.to(torch.float64) - float(groups.min()))[:, None] * span
    return nms(b + shift, scores, threshold, mode, offset)
