"""AffectNet (manually annotated part): ``training.csv`` / ``validation.csv`` (DESIGN.md §4).

Columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal``. ``facial_landmarks`` is
``x1;y1;x2;y2;...`` (68 points). Expression codes 0..7 are neutral, happy, sad,
surprise, fear, disgust, anger, contempt; 8 none, 9 uncertain, 10 non-face are
dropped by both protocols (and counted). The validation set is the test set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facefactors.data.labels import (
    AFFECTNET_CODES,
    AFFECTNET_NON_EXPRESSION,
    ALL8,
    BASIC7,
    class_index,
    decode_code,
)
from facefactors.data.parsing import (
    check_missing_policy,
    first_existing,
    image_present,
    parse_float,
    require_dir,
)
from facefactors.data.records import DatasetIndex, Sample, count_drop, line_error
from facefactors.errors import DataError
from facefactors.textfile import csv_rows

COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
SPLIT_FILES = {"train": "training.csv", "test": "validation.csv"}
# Where releases put the CSVs and the images, relative to the AffectNet root.
CSV_DIRS = (".", "Manually_Annotated_file_lists")
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", ".")


def parse_landmarks(text: str, path: Path, lineno: int) -> np.ndarray | None:
    """``"x1;y1;x2;y2;..."`` -> (N, 2) float32, or None for an empty field."""
    text = text.strip()
    if not text:
        return None
    try:
        values = np.array([float(v) for v in text.split(";") if v.strip()], dtype=np.float32)
    except ValueError:
        raise line_error(
            path, lineno, "facial_landmarks holds something other than numbers"
        ) from None
    if values.size == 0 or values.size % 2:
        raise line_error(
            path, lineno, f"facial_landmarks holds {values.size} numbers, not x;y pairs"
        )
    return values.reshape(-1, 2)


def _rows(path: Path):
    """``(line, {column: text})``; accepts files with or without the header line."""
    header = None
    for line_num, fields in csv_rows(path, "AffectNet CSV file"):
        if not fields or all(not f.strip() for f in fields):
            continue
        if header is None:
            header = [f.strip() for f in fields]
            if header[0] == COLUMNS[0]:
                absent = [c for c in COLUMNS if c not in header]
                if absent:
                    raise line_error(
                        path, line_num, f"the header lacks column(s) {', '.join(absent)}"
                    )
                continue
            header = list(COLUMNS)  # headerless release: the standard column order
        if len(fields) != len(header):
            raise line_error(
                path, line_num, f"expected {len(header)} fields but found {len(fields)}"
            )
        yield line_num, dict(zip(header, fields))


def load_affectnet(
    root: str | os.PathLike,
    *,
    num_classes: int = 7,
    images_dir: str | os.PathLike | None = None,
    missing: str = "error",
    check_files: bool = True,
) -> DatasetIndex:
    """Index AffectNet in the 7-class (codes 0-6) or 8-class (codes 0-7) setting.

    Args:
        root: AffectNet folder holding ``training.csv`` and ``validation.csv`` (directly
            or in ``Manually_Annotated_file_lists/``).
        num_classes: 7 or 8.
        images_dir: Folder the ``subDirectory_filePath`` entries are relative to; by
            default the first of ``Manually_Annotated_Images``,
            ``Manually_Annotated/Manually_Annotated_Images`` or ``root`` that exists.
        missing: ``"error"`` or ``"skip"`` (counted) for listed images that do not exist.
        check_files: Check that every listed image exists.

    Returns:
        Index with splits ``train`` / ``test``; samples carry ``box`` (x, y, w, h),
        ``landmarks`` (68, 2) and ``meta`` ``{"valence", "arousal", "line"}``.

    Raises:
        DataError: A missing file, malformed row, unknown code, or empty split.
    """
    if num_classes not in (7, 8):
        raise DataError(f"AffectNet num_classes must be 7 or 8, not {num_classes}.")
    check_missing_policy(missing)
    root = require_dir(Path(root), "AffectNet")
    classes = BASIC7 if num_classes == 7 else ALL8
    image_root = (
        Path(images_dir) if images_dir else first_existing(root, IMAGE_DIRS, "image folder")
    )
    known = {**AFFECTNET_CODES, **AFFECTNET_NON_EXPRESSION}
    dropped: dict[str, int] = {}
    samples: list[Sample] = []
    for split, fname in SPLIT_FILES.items():
        path = first_existing(root, [f"{d}/{fname}" for d in CSV_DIRS], fname)
        before = len(samples)
        for lineno, row in _rows(path):
            where = f"{path} line {lineno}"
            code = decode_code(row["expression"], known, where)
            name = AFFECTNET_CODES.get(code, AFFECTNET_NON_EXPRESSION.get(code))
            if name not in classes:
                count_drop(dropped, name)
                continue
            image = image_root / row["subDirectory_filePath"].strip()
            if not image_present(image, where, missing, dropped, check_files):
                continue
            box = tuple(parse_float(row[c], path, lineno, c) for c in COLUMNS[1:5])
            meta = {
                "valence": parse_float(row["valence"], path, lineno, "valence"),
                "arousal": parse_float(row["arousal"], path, lineno, "arousal"),
                "line": lineno,
            }
            samples.append(
                Sample(
                    str(image),
                    class_index(name, classes),
                    split,
                    box=box,
                    landmarks=parse_landmarks(row["facial_landmarks"], path, lineno),
                    meta=meta,
                )
            )
        if len(samples) == before:
            raise DataError(f"AffectNet file {path} yields no {num_classes}-class samples.")
    return DatasetIndex(
        f"affectnet{num_classes}", classes, samples, str(root), meta={"dropped": dropped}
    )
