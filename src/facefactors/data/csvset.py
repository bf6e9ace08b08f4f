"""A CSV list of images: header ``path,label[,split]`` and optional extra columns.

``label`` is a canonical class name or alias (or a numbered one, ``1 - Happy``, or
any name a ``class_map`` maps); ``path`` is relative to the CSV's folder (absolute
paths are kept). The subject comes from the ``subject`` column (another column
with ``subject_column``) or from each file name (``subject_regex``). Optional columns understood: ``split``,
``subject``, ``fold`` (int), ``yaw``, ``pitch``, ``roll`` (degrees), ``pose_bin``
(int), ``det_score``; empty cells mean unknown. This also reads the
``annotations.csv`` that ``facefactors prepare`` writes. Other columns are kept
as text in ``Sample.meta``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from facefactors.data.generic import resolve_classes
from facefactors.data.labels import class_index, parse_class_map, resolve_class_name
from facefactors.data.parsing import (
    check_missing_policy,
    image_present,
    iter_csv,
    parse_float,
    parse_int,
    require_file,
)
from facefactors.data.records import DatasetIndex, Sample
from facefactors.data.subjects import compile_subject_regex, subject_from_name
from facefactors.errors import DataError

FLOAT_COLUMNS = ("yaw", "pitch", "roll", "det_score")
INT_COLUMNS = ("pose_bin",)
OWN_COLUMNS = {"path", "label", "split", "subject", "fold"}


def _row_meta(row: dict[str, str], path: Path, lineno: int) -> dict:
    """Typed optional columns (empty = absent) plus the unrecognised ones as text."""
    meta: dict = {"line": lineno}
    for col, text in row.items():
        text = text.strip()
        if col in OWN_COLUMNS or not text:
            continue
        if col in FLOAT_COLUMNS:
            meta[col] = parse_float(text, path, lineno, col)
        elif col in INT_COLUMNS:
            meta[col] = parse_int(text, path, lineno, col)
        else:
            meta[col] = text
    return meta


def load_csv(
    csv_path: str | os.PathLike,
    *,
    default_split: str = "train",
    classes: Sequence[str] | None = None,
    missing: str = "error",
    check_files: bool = True,
    class_map: str | Mapping[str, str] | None = None,
    subject_column: str = "subject",
    subject_regex: str | None = None,
) -> DatasetIndex:
    """Index the images listed in a CSV.

    Args:
        csv_path: The CSV file (or a folder holding ``annotations.csv``).
        default_split: Split of rows without a ``split`` column or with an empty cell.
        classes: Class order (canonical names or aliases); default: the labels found,
            in canonical order.
        missing: ``"error"`` or ``"skip"`` (counted) for listed images that do not exist.
        check_files: Check that every listed image exists.
        class_map: Label -> class (``"1 - Happy=happy,..."`` or a mapping) for labels
            that are neither classes nor numbered classes.
        subject_column: Column holding the subject id (required in the header when
            not ``subject``); empty cells mean unknown.
        subject_regex: Read the subject from each image's file name instead (see
            :func:`facefactors.data.subjects.subject_from_name`).

    Raises:
        DataError: A missing file or column, an unknown label, a malformed field,
            a missing image, a file name the subject pattern does not match, or no rows.
    """
    check_missing_policy(missing)
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / "annotations.csv"
    csv_path = require_file(csv_path, "Image list CSV")
    base = csv_path.parent
    mapping = parse_class_map(class_map, f"Option class_map for {csv_path}")
    regex = compile_subject_regex(subject_regex)
    required = ("path", "label") + (() if subject_column == "subject" else (subject_column,))
    dropped: dict[str, int] = {}
    rows = []
    for lineno, row in iter_csv(csv_path, required):
        where = f"{csv_path} line {lineno}"
        name = resolve_class_name(row["label"], where, mapping)
        rel = row["path"].strip()
        if not rel:
            raise DataError(f"{where}: the path is empty.")
        image = base / rel
        if not image_present(image, where, missing, dropped, check_files):
            continue
        fold_text = row.get("fold", "").strip()
        fold = parse_int(fold_text, csv_path, lineno, "fold") if fold_text else None
        split = row.get("split", "").strip() or default_split
        subject = row.get(subject_column, "").strip() or None
        if regex is not None:
            subject = subject_from_name(regex, rel, where)
        rows.append((where, name, image, split, subject, fold, _row_meta(row, csv_path, lineno)))
    if not rows:
        raise DataError(f"Image list CSV {csv_path} lists no images.")
    cls = resolve_classes(classes, [r[1] for r in rows], f"Option classes for {csv_path}")
    samples = [
        Sample(str(image), class_index(name, cls, where), split, subject, fold, meta=meta)
        for where, name, image, split, subject, fold, meta in rows
    ]
    return DatasetIndex("csv", cls, samples, str(csv_path), meta={"dropped": dropped})
