"""Statistics of a prepared dataset: pose-bin and class counts per split (``stats.json``/``.md``).

The pose table has the layout of Table 1 of the IPD-FER paper (head-pose labels
of the training sets): one row per yaw bin, plus a row for images whose pose is
unknown. For the datasets in that table the paper's training-set counts are
printed beside ours, for comparison.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from facefactors.constants import NUM_POSE_BINS, POSE_BIN_EDGES

FAILURE_REASONS = ("no_face", "corrupt", "missing")
UNKNOWN = "unknown"

# Table 1 of the IPD-FER paper: training images per pose label (yaw bins 0..4).
PAPER_TABLE1: dict[str, tuple[int, ...]] = {
    "rafdb": (5836, 2544, 1646, 1058, 1187),
    "ferplus": (13515, 4985, 3200, 2486, 874),
    "affectnet7": (167448, 66322, 35732, 12146, 2253),
    "sfew": (453, 279, 157, 49, 17),
}
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2, "all": 3}


def yaw_ranges() -> list[str]:
    """Human-readable |yaw| range of each pose bin, e.g. ``["0°–10°", ..., "≥40°"]``."""
    lows = (0.0, *POSE_BIN_EDGES)
    out = [f"{lo:g}°–{hi:g}°" for lo, hi in zip(lows, POSE_BIN_EDGES)]
    return [*out, f"≥{POSE_BIN_EDGES[-1]:g}°"]


def ordered_splits(splits: Iterable[str]) -> list[str]:
    """Split names in the order train, val, test, all, then the rest alphabetically."""
    return sorted(set(splits), key=lambda s: (_SPLIT_ORDER.get(s, 9), s))


def compute_stats(
    records: Sequence[dict[str, Any]], label_names: Sequence[str], dataset: str = ""
) -> dict[str, Any]:
    """Counts over the records of one prepared output.

    Args:
        records: Progress records (one per sample, prepared or failed).
        label_names: Every label name of the dataset, in class order.
        dataset: Loader name (selects the paper's column, if any).

    Returns:
        A JSON-ready dict: ``samples``, ``prepared``, ``failures`` (per reason),
        ``pose_bins`` (split -> bin ``"0"``..``"4"``/``"unknown"`` -> count, prepared
        images only), ``classes`` (split -> class -> count, prepared images only),
        ``landmarks_from`` (source -> count), ``multiple_faces`` (images where MTCNN
        found more than one face; the best one was kept).
    """
    ok = [r for r in records if r["status"] == "ok"]
    splits = ordered_splits(r["split"] for r in records)
    failures = Counter(r["status"] for r in records if r["status"] != "ok")
    pose: dict[str, dict[str, int]] = {}
    classes: dict[str, dict[str, int]] = {}
    for split in splits:
        rows = [r for r in ok if r["split"] == split]
        bins = Counter(r["pose_bin"] for r in rows)
        pose[split] = {str(b): bins.get(b, 0) for b in range(NUM_POSE_BINS)}
        pose[split][UNKNOWN] = sum(c for b, c in bins.items() if b < 0)
        labels = Counter(r["label"] for r in rows)
        classes[split] = {name: labels.get(name, 0) for name in label_names}
    sources = Counter(r.get("landmarks_from") or "none" for r in ok)
    return {
        "dataset": dataset,
        "samples": len(records),
        "prepared": len(ok),
        "failures": {reason: failures.get(reason, 0) for reason in FAILURE_REASONS},
        "splits": splits,
        "pose_bins": pose,
        "classes": classes,
        "landmarks_from": dict(sorted(sources.items())),
        "multiple_faces": sum(1 for r in ok if (r.get("faces") or 0) > 1),
    }


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def stats_markdown(stats: dict[str, Any]) -> str:
    """``stats.md``: the pose table (Table 1 layout), class counts and failures."""
    splits = stats["splits"]
    paper = PAPER_TABLE1.get(stats["dataset"])
    head = ["Pose label", "Yaw angle", *splits] + (["paper (train)"] if paper else [])
    rows = []
    for b, rng in enumerate(yaw_ranges()):
        row = [b, rng, *(stats["pose_bins"][s][str(b)] for s in splits)]
        rows.append(row + ([paper[b]] if paper else []))
    rows.append(
        [UNKNOWN, "—", *(stats["pose_bins"][s][UNKNOWN] for s in splits)] + (["—"] if paper else [])
    )
    totals = [sum(stats["pose_bins"][s].values()) for s in splits]
    rows.append(["total", "", *totals] + ([sum(paper)] if paper else []))

    names = list(next(iter(stats["classes"].values()), {}))
    class_rows = [[n, *(stats["classes"][s][n] for s in splits)] for n in names]
    f = stats["failures"]
    out = [
        f"# Prepared dataset: {stats['dataset']}",
        "",
        f"{stats['prepared']} of {stats['samples']} images prepared; "
        f"no face {f['no_face']}, corrupt {f['corrupt']}, missing {f['missing']} "
        "(listed in failures.csv).",
        "",
        "## Head pose per split (|yaw| bins; unknown = no landmarks to estimate it from)",
        "",
        *_table(head, rows),
        "",
        "## Classes per split",
        "",
        *_table(["Class", *splits], class_rows),
        "",
        "## Landmark sources",
        "",
        *_table(["Source", "Images"], sorted(stats["landmarks_from"].items())),
        "",
        f"Images where MTCNN found more than one face (the highest-scoring one was kept): "
        f"{stats['multiple_faces']}.",
        "",
    ]
    return "\n".join(out)
