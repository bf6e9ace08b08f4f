"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned`` (DESIGN.md §4).

Each label line is ``<name> <label>``, e.g. ``train_00001.jpg 5``; names start
with ``train_`` or ``test_`` (the split) and labels 1..7 mean surprise, fear,
disgust, happy, sad, anger, neutral. The aligned 100×100 image of
``train_00001.jpg`` is ``Image/aligned/train_00001_aligned.jpg``.
"""

from __future__ import annotations

import os
from pathlib import Path

from facefactors.data.labels import BASIC7, RAFDB_CODES, class_index, decode_code
from facefactors.data.parsing import (
    check_missing_policy,
    image_present,
    require_dir,
    require_file,
)
from facefactors.data.records import DatasetIndex, Sample, line_error
from facefactors.errors import DataError
from facefactors.textfile import read_text

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"
SPLIT_PREFIXES = {"train_": "train", "test_": "test"}


def rafdb_image_path(root: Path, name: str, aligned: bool = True) -> Path:
    """Where RAF-DB keeps the image of label-file entry ``name``."""
    if aligned:
        stem = os.path.splitext(name)[0]
        return root / "Image" / "aligned" / f"{stem}_aligned.jpg"
    return root / "Image" / "original" / name


def load_rafdb(
    root: str | os.PathLike,
    *,
    aligned: bool = True,
    missing: str = "error",
    check_files: bool = True,
) -> DatasetIndex:
    """Index RAF-DB basic (7 classes, train/test).

    Args:
        root: The ``basic`` folder holding ``EmoLabel/`` and ``Image/``.
        aligned: Use ``Image/aligned/*_aligned.jpg`` (True) or ``Image/original/``.
        missing: ``"error"`` (default) or ``"skip"`` (counted) for listed images that
            do not exist.
        check_files: Check that every listed image exists.

    Returns:
        Index with classes :data:`BASIC7` and splits ``train`` / ``test``.

    Raises:
        DataError: Missing label file or image, malformed line, unknown code,
            or an empty train or test split.
    """
    check_missing_policy(missing)
    root = require_dir(Path(root), "RAF-DB")
    label_file = require_file(root / LABEL_FILE, "RAF-DB label")
    dropped: dict[str, int] = {}
    samples: list[Sample] = []
    text = read_text(label_file, "RAF-DB label file")
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise line_error(
                label_file, lineno, f"expected '<name> <label>' but got {line.strip()!r}"
            )
        name, raw = fields
        split = next((s for p, s in SPLIT_PREFIXES.items() if name.startswith(p)), None)
        if split is None:
            raise line_error(
                label_file, lineno, f"image name {name!r} starts with neither train_ nor test_"
            )
        code = decode_code(raw, RAFDB_CODES, f"{label_file} line {lineno}")
        image = rafdb_image_path(root, name, aligned)
        if not image_present(image, f"{label_file} line {lineno}", missing, dropped, check_files):
            continue
        label = class_index(RAFDB_CODES[code], BASIC7)
        samples.append(Sample(str(image), label, split, meta={"name": name, "line": lineno}))
    index = DatasetIndex("rafdb", BASIC7, samples, str(root), meta={"dropped": dropped})
    for split in SPLIT_PREFIXES.values():
        if not any(s.split == split for s in samples):
            raise DataError(f"RAF-DB label file {label_file} lists no images of the {split} split.")
    return index
