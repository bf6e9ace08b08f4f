"""FER2013 and FERPlus: 48×48 grey faces stored inline in CSVs (DESIGN.md §4).

``fer2013.csv`` has columns ``emotion,pixels,Usage``; ``fer2013new.csv`` has
``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,
unknown,NF`` with one row per fer2013.csv row, in the same order. FERPlus labels
come from the votes by the majority protocol in :func:`ferplus_majority`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facefactors.data.labels import (
    ALL8,
    BASIC7,
    FER2013_CODES,
    FERPLUS_VOTE_COLUMNS,
    class_index,
    decode_code,
)
from facefactors.data.parsing import first_existing, iter_csv, parse_int, require_dir
from facefactors.data.records import DatasetIndex, Sample, count_drop, line_error
from facefactors.errors import DataError

USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FER_SIDE = 48
VOTE_NAMES = tuple(col for col, _ in FERPLUS_VOTE_COLUMNS)


def ferplus_majority(votes: Sequence[int]) -> int | None:
    """FERPlus majority protocol on one row of vote counts.

    1. counts of 1 (or 0) are set to 0 — a single vote is treated as noise;
    2. the argmax wins if it holds more than half of the remaining votes
       (a tie can therefore never win);
    3. the caller drops winners ``unknown`` / ``NF`` (columns 8 and 9).

    Args:
        votes: The 10 counts in :data:`FERPLUS_VOTE_COLUMNS` order.

    Returns:
        Winning column index 0..9, or None when no column holds a majority.
    """
    kept = [v if v > 1 else 0 for v in votes]
    total = sum(kept)
    if total == 0:
        return None
    best = max(range(len(kept)), key=kept.__getitem__)
    return best if 2 * kept[best] > total else None


def parse_fer_pixels(text: str, path: Path, lineno: int) -> np.ndarray:
    """``"70 80 82 ..."`` (2304 ints 0..255) -> (48, 48) uint8; DataError naming the line."""
    values = None
    with warnings.catch_warnings():
        # np.fromstring is ~6x faster than split() on 35,887 rows, but it only warns
        # (and stops) on a bad token; a warning sends us to the strict slow path.
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except (DeprecationWarning, ValueError):
            values = None
    if values is None or values.size != FER_SIDE * FER_SIDE:
        try:
            values = np.array(text.split(), dtype=np.int64)
        except ValueError:
            raise line_error(
                path, lineno, "the pixels field holds something other than integers"
            ) from None
    if values.size != FER_SIDE * FER_SIDE:
        raise line_error(
            path, lineno, f"the pixels field holds {values.size} values, not {FER_SIDE * FER_SIDE}"
        )
    if values.min() < 0 or values.max() > 255:
        raise line_error(path, lineno, "a pixel value lies outside 0..255")
    return values.astype(np.uint8).reshape(FER_SIDE, FER_SIDE)


def _split_of(usage: str, path: Path, lineno: int) -> str:
    split = USAGE_SPLITS.get(usage.strip())
    if split is None:
        raise line_error(path, lineno, f"Usage {usage!r} is not one of {', '.join(USAGE_SPLITS)}")
    return split


def _read_fer2013(path: Path) -> list[tuple[int, str, str, np.ndarray]]:
    """Rows of fer2013.csv as ``(line, split, emotion text, pixels)``."""
    rows = []
    for lineno, row in iter_csv(path, ("emotion", "pixels", "Usage")):
        split = _split_of(row["Usage"], path, lineno)
        rows.append((lineno, split, row["emotion"], parse_fer_pixels(row["pixels"], path, lineno)))
    if not rows:
        raise DataError(f"FER2013 file {path} holds no rows.")
    return rows


def _fer2013_csv(root: Path) -> Path:
    return first_existing(root, ("fer2013.csv", "fer2013/fer2013.csv"), "fer2013.csv")


def load_ferplus(root: str | os.PathLike, *, new_csv: str | None = None) -> DatasetIndex:
    """Index FERPlus under the majority protocol (8 classes, train/val/test).

    Args:
        root: Folder holding ``fer2013.csv`` and ``fer2013new.csv``.
        new_csv: Path of ``fer2013new.csv`` if it is not in ``root``.

    Returns:
        Index with classes :data:`ALL8`; samples carry ``pixels`` (48, 48) uint8 and
        ``meta`` ``{"image_name", "line"}``. ``meta["dropped"]`` counts the rows the
        protocol removed: ``empty image name``, ``no majority``, ``unknown``, ``NF``.

    Raises:
        DataError: A missing file or column, a malformed row, mismatched row counts or
            Usage between the two files.
    """
    root = require_dir(Path(root), "FERPlus")
    old_path = _fer2013_csv(root)
    new_path = (
        Path(new_csv)
        if new_csv
        else first_existing(root, ("fer2013new.csv", "FERPlus/fer2013new.csv"), "fer2013new.csv")
    )
    old_rows = _read_fer2013(old_path)
    new_rows = list(iter_csv(new_path, ("Usage", "Image name", *VOTE_NAMES)))
    if len(new_rows) != len(old_rows):
        raise DataError(
            f"{new_path} has {len(new_rows)} rows but {old_path} has {len(old_rows)}; "
            "they must match row for row."
        )
    dropped: dict[str, int] = {}
    samples: list[Sample] = []
    for (_, split, _, pixels), (lineno, row) in zip(old_rows, new_rows):
        if _split_of(row["Usage"], new_path, lineno) != split:
            raise line_error(
                new_path,
                lineno,
                f"Usage {row['Usage']!r} differs from the matching fer2013.csv row",
            )
        votes = [parse_int(row[c], new_path, lineno, c) for c in VOTE_NAMES]
        if min(votes) < 0:
            raise line_error(new_path, lineno, "a vote count is negative")
        name = row["Image name"].strip()
        if not name:
            count_drop(dropped, "empty image name")
            continue
        winner = ferplus_majority(votes)
        if winner is None:
            count_drop(dropped, "no majority")
            continue
        column, canonical = FERPLUS_VOTE_COLUMNS[winner]
        if canonical is None:
            count_drop(dropped, column)
            continue
        label = class_index(canonical, ALL8)
        samples.append(
            Sample(None, label, split, pixels=pixels, meta={"image_name": name, "line": lineno})
        )
    return DatasetIndex("ferplus", ALL8, samples, str(root), meta={"dropped": dropped})


def load_fer2013(root: str | os.PathLike) -> DatasetIndex:
    """Index the original FER2013 labels (``emotion`` 0..6; 7 classes, train/val/test)."""
    root = require_dir(Path(root), "FER2013")
    path = _fer2013_csv(root)
    samples = []
    for lineno, split, raw, pixels in _read_fer2013(path):
        code = decode_code(raw, FER2013_CODES, f"{path} line {lineno}")
        label = class_index(FER2013_CODES[code], BASIC7)
        samples.append(Sample(None, label, split, pixels=pixels, meta={"line": lineno}))
    return DatasetIndex("fer2013", BASIC7, samples, str(root))
