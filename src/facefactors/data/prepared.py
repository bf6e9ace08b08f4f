"""Read a prepared folder back as a :class:`~facefactors.data.records.DatasetIndex`.

``annotations.csv`` alone is a valid input of the ``csv`` loader, which infers
the classes from the labels it finds. :func:`load_prepared` also reads the
``prepared.json`` manifest, so the index keeps the source dataset's exact class
order, its extra-neutral reference images (CK+) and its fold count, which the
labels alone cannot tell (a class with no prepared image, or neutral frames of a
6-class CK+ that are not a class).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from facefactors.data.csvset import load_csv
from facefactors.data.records import DatasetIndex
from facefactors.errors import DataError
from facefactors.textfile import read_text

# The manifest `facefactors prepare` writes beside annotations.csv (prepare/outputs.py).
MANIFEST = "prepared.json"
MANIFEST_FORMAT = "facefactors-prepared"

_MANIFEST_KEYS = ("dataset", "classes", "extra_neutral")


def _read_manifest(path: Path) -> dict:
    text = read_text(path, "Prepared-dataset manifest")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"Prepared-dataset manifest {path} is not readable JSON ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DataError(f"File {path} is not a facefactors prepared-dataset manifest.")
    for key in _MANIFEST_KEYS:
        if key not in data:
            raise DataError(f"Prepared-dataset manifest {path} has no key {key!r}.")
    return data


def load_prepared(root: str | os.PathLike, *, check_files: bool = True) -> DatasetIndex:
    """Index the output folder of ``facefactors prepare``.

    Args:
        root: The prepared folder (or its ``annotations.csv``).
        check_files: Check that every aligned image exists.

    Returns:
        Index named after the source dataset (``rafdb``, ``ckplus7``, ...), with its
        classes, ``extra_neutral`` flag and ``meta["folds"]``; every sample has
        ``meta["pose_bin"]`` (-1 = unknown), and ``meta["yaw"]``, ``"pitch"``,
        ``"roll"``, ``"det_score"`` where known, plus ``subject`` and ``fold`` where the
        dataset has them. ``meta["prepared"]`` is the folder. Without a manifest the
        plain ``csv`` index is returned.

    Raises:
        DataError: A missing or malformed annotations file or manifest, or a label
            the manifest's classes do not cover (naming the CSV line).
    """
    root = Path(root)
    folder = root if root.is_dir() else root.parent
    index = load_csv(folder / "annotations.csv" if root.is_dir() else root, check_files=check_files)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return index
    m = _read_manifest(manifest_path)
    classes = tuple(m["classes"])
    names = (*classes, "neutral") if m["extra_neutral"] else classes
    samples = []
    for s in index.samples:
        name = index.classes[s.label]
        if name not in names:
            raise DataError(
                f"{index.root} line {s.meta.get('line')}: label {name!r} is not among the classes "
                f"{', '.join(names)} listed in {manifest_path}."
            )
        samples.append(dataclasses.replace(s, label=names.index(name)))
    meta = {"dropped": {}, "prepared": str(folder), "folds": m.get("folds"), "size": m.get("size")}
    return DatasetIndex(m["dataset"], classes, samples, index.root, bool(m["extra_neutral"]), meta)
