"""A generic ``root/<split>/<class>/*.jpg`` or flat ``root/<class>/*.jpg`` tree, and the
class-folder scan SFEW shares.

Class folder names must be canonical expression names or a common alias
(``angry``, ``happiness``, ``sadness``, ``surprised``, ``disgusted``, ``fearful``),
in any case, optionally after a number (``1 - Happy``, ``01_happy``); ``class_map``
maps any other name. A root whose subfolders are classes rather than splits is one
pool of split ``all``, for cross-validation by subject (``subject_regex`` reads the
subject from each file name). Non-image files are counted in ``meta["dropped"]``,
never silently skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from facefactors.data.io import is_image_name
from facefactors.data.labels import (
    canonical_order,
    class_index,
    parse_class_map,
    resolve_class,
    resolve_class_name,
)
from facefactors.data.parsing import require_dir
from facefactors.data.records import DatasetIndex, Sample, count_drop
from facefactors.data.subjects import compile_subject_regex, subject_from_name
from facefactors.errors import DataError

SPLIT_ALIASES = {
    "training": "train",
    "train": "train",
    "validation": "val",
    "valid": "val",
    "val": "val",
    "testing": "test",
    "test": "test",
}


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(
    split_dir: Path, resolve: Callable[[str, Path], str], dropped: dict[str, int]
) -> list[tuple[Path, str]]:
    """Images under ``split_dir/<class>/`` (recursively) with their canonical class name.

    Args:
        split_dir: Folder whose subfolders are classes.
        resolve: Maps a class folder's name (and the folder, for errors) to a canonical name.
        dropped: Counter for non-image files.

    Returns:
        Sorted ``(image path, canonical class)`` pairs.

    Raises:
        DataError: An unknown class folder, or no images at all (an empty split).
    """
    found: list[tuple[Path, str]] = []
    for cls_dir in _visible_dirs(split_dir):
        name = resolve(cls_dir.name, cls_dir)
        for f in sorted(p for p in cls_dir.rglob("*") if p.is_file()):
            if f.name.startswith("."):
                count_drop(dropped, "hidden file")  # .DS_Store, macOS "._" forks
            elif is_image_name(f.name):
                found.append((f, name))
            else:
                count_drop(dropped, "not an image")
    for f in split_dir.iterdir():
        if f.is_file():
            count_drop(dropped, "file outside a class folder")
    if not found:
        raise DataError(f"Split folder {split_dir} holds no images in class subfolders.")
    return found


def resolve_classes(
    classes: Sequence[str] | None, found: Sequence[str], where: str
) -> tuple[str, ...]:
    """The class tuple: the user's list (aliases allowed, order kept) or the found names."""
    if classes is None:
        return canonical_order(found)
    return tuple(resolve_class(c, where) for c in classes)


def split_name(folder: str) -> str | None:
    """The split a folder name stands for (``Training`` -> ``train``), or None."""
    return SPLIT_ALIASES.get(folder.lower())


def _is_flat(root: Path, top: list[Path], resolve: Callable[[str, Path], str]) -> bool:
    """Whether ``root``'s subfolders are classes (a flat tree) rather than splits.

    Flat when no subfolder is a known split name and at least one is a class name;
    then every subfolder must be a class (the first that is not raises, named).

    Raises:
        DataError: split folders beside class folders, or an unknown class folder
            in a flat tree.
    """

    def is_class(d: Path) -> bool:
        try:
            resolve(d.name, d)
        except DataError:
            return False
        return True

    known = [is_class(d) for d in top]
    splits = [d.name for d in top if split_name(d.name)]
    if splits and any(known):
        classes = [d.name for d, k in zip(top, known) if k]
        raise DataError(
            f"Dataset folder {root} mixes split folders ({', '.join(splits)}) with class "
            f"folders ({', '.join(classes)}); use root/<split>/<class>/ or root/<class>/."
        )
    if splits or not any(known):
        return False
    if not all(known):
        bad = top[known.index(False)]
        resolve(bad.name, bad)  # raises: a flat tree with an unknown class folder
    return True


def load_folder(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    class_map: str | Mapping[str, str] | None = None,
    subject_regex: str | None = None,
) -> DatasetIndex:
    """Index a ``root/<split>/<class>/<image>`` or a flat ``root/<class>/<image>`` tree.

    Args:
        root: Folder whose subfolders are splits (``train``, ``val``, ``test``; the
            aliases training/validation/valid/testing are normalised), or classes
            (a flat tree: every sample gets split ``all``, to be cross-validated).
        classes: Class order to use (canonical names or aliases); default: the classes
            found, in canonical order.
        class_map: Folder name -> class, as ``"1 - Happy=happy,2 - Sad=sad"`` or a
            mapping, for folder names that are neither classes nor numbered classes.
        subject_regex: Pattern whose match in each file name is the subject id
            (group ``subject``, else group 1, else the whole match); see
            :func:`facefactors.data.subjects.subject_from_name`.

    Returns:
        Index named ``"folder"``.

    Raises:
        DataError: No subfolders, an empty split, an unknown class folder, a class
            not in ``classes``, or a file name the subject pattern does not match.
    """
    root = require_dir(Path(root), "Dataset")
    split_dirs = _visible_dirs(root)
    if not split_dirs:
        raise DataError(f"Dataset folder {root} has no <split>/<class>/ or <class>/ subfolders.")
    mapping = parse_class_map(class_map, f"Option class_map for {root}")
    regex = compile_subject_regex(subject_regex)

    def resolve(name: str, folder: Path) -> str:
        return resolve_class_name(name, f"Class folder {folder}", mapping)

    dropped: dict[str, int] = {}
    if _is_flat(root, split_dirs, resolve):
        found = [("all", path, name) for path, name in scan_class_folders(root, resolve, dropped)]
    else:
        found = [
            (split_name(d.name) or d.name, path, name)
            for d in split_dirs
            for path, name in scan_class_folders(d, resolve, dropped)
        ]
    cls = resolve_classes(classes, [n for _, _, n in found], f"Option classes for {root}")
    samples = [
        Sample(
            str(path),
            class_index(name, cls, f"Image {path}"),
            split,
            subject_from_name(regex, path, f"Image {path}") if regex else None,
        )
        for split, path, name in found
    ]
    meta = {"dropped": dropped, "subject_regex": subject_regex, "class_map": mapping or None}
    return DatasetIndex("folder", cls, samples, str(root), meta=meta)
