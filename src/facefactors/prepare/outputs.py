"""The files a finished ``prepare`` leaves in its output folder, built from progress records.

- ``annotations.csv``: one row per prepared image, columns :data:`ANNOTATION_COLUMNS`
  (``path`` relative to the folder; empty yaw/pitch/roll and ``pose_bin`` -1 mean
  the pose is unknown; empty ``det_score`` means no detector score exists).
- ``failures.csv``: one row per sample that was not prepared, columns
  :data:`FAILURE_COLUMNS`, reason ``no_face``, ``corrupt`` or ``missing``.
- ``stats.json`` and ``stats.md``: see :mod:`facefactors.prepare.stats`.
- ``prepared.json``: the dataset's class list and protocol facts, read back by
  :func:`facefactors.data.prepared.load_prepared`.

All are written atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facefactors.data.prepared import MANIFEST, MANIFEST_FORMAT
from facefactors.prepare.stats import compute_stats, stats_markdown

ANNOTATION_COLUMNS = (
    "path",
    "label",
    "split",
    "fold",
    "subject",
    "yaw",
    "pitch",
    "roll",
    "pose_bin",
    "det_score",
)
FAILURE_COLUMNS = ("file", "split", "label", "reason", "detail")


def _num(value: float | None, digits: int) -> str:
    """A float with fixed decimals, or ``""`` when unknown.

    Fixed rounding also makes runs that split the work differently (shards,
    workers) print identical files even if a float differs in its last bits.
    """
    return "" if value is None else f"{value:.{digits}f}"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def annotation_row(rec: dict[str, Any]) -> list[str]:
    """One ``annotations.csv`` row of a prepared record."""
    return [
        rec["path"],
        rec["label"],
        rec["split"],
        _text(rec["fold"]),
        _text(rec["subject"]),
        _num(rec["yaw"], 3),
        _num(rec["pitch"], 3),
        _num(rec["roll"], 3),
        str(int(rec["pose_bin"])),
        _num(rec["det_score"], 5),
    ]


def failure_row(rec: dict[str, Any]) -> list[str]:
    """One ``failures.csv`` row of a failed record."""
    return [rec["file"], rec["split"], rec["label"], rec["status"], rec.get("detail", "")]


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A CSV document with a header line (``\\n`` line ends, minimal quoting)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def write_annotations(path: Path, records: Sequence[dict[str, Any]]) -> int:
    """Write the prepared records (others are ignored) as an annotations CSV.

    Returns:
        The number of rows written.
    """
    from facefactors.checkpoint import atomic_write_text

    rows = [annotation_row(r) for r in records if r["status"] == "ok"]
    atomic_write_text(path, csv_text(ANNOTATION_COLUMNS, rows))
    return len(rows)


def write_outputs(
    out_dir: Path, header: dict[str, Any], records: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Write annotations, failures, statistics and the manifest for a set of records.

    Args:
        out_dir: The output folder.
        header: The progress header (dataset name, classes, protocol facts).
        records: One record per sample, in dataset order.

    Returns:
        The statistics dict (see :func:`facefactors.prepare.stats.compute_stats`).
    """
    from facefactors.checkpoint import atomic_write_text

    write_annotations(out_dir / "annotations.csv", records)
    fails = [failure_row(r) for r in records if r["status"] != "ok"]
    atomic_write_text(out_dir / "failures.csv", csv_text(FAILURE_COLUMNS, fails))
    stats = compute_stats(records, header["label_names"], header["dataset"])
    stats["dropped_by_protocol"] = header.get("dropped", {})
    atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=2) + "\n")
    atomic_write_text(out_dir / "stats.md", stats_markdown(stats))
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "dataset": header["dataset"],
        "classes": header["classes"],
        "extra_neutral": header["extra_neutral"],
        "folds": header.get("folds"),
        "size": header["size"],
        "detect": header["detect"],
        "annotations": "annotations.csv",
    }
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return stats


def summary_line(stats: dict[str, Any]) -> str:
    """``"prepared N, no face M, corrupt K, missing J"``."""
    f = stats["failures"]
    return (
        f"prepared {stats['prepared']}, no face {f['no_face']}, "
        f"corrupt {f['corrupt']}, missing {f['missing']}"
    )
