"""A generic ``root/<split>/<class>/*.jpg`` tree, and the class-folder scan SFEW shares.

Class folder names must be canonical expression names or a common alias
(``angry``, ``happiness``, ``sadness``, ``surprised``, ``disgusted``, ``fearful``),
in any case. Non-image files are counted in ``meta["dropped"]``, never silently
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from facefactors.data.io import is_image_name
from facefactors.data.labels import canonical_order, class_index, resolve_class
from facefactors.data.parsing import require_dir
from facefactors.data.records import DatasetIndex, Sample, count_drop
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


def _canonical_folder(name: str, folder: Path) -> str:
    return resolve_class(name, f"Class folder {folder}")


def resolve_classes(
    classes: Sequence[str] | None, found: Sequence[str], where: str
) -> tuple[str, ...]:
    """The class tuple: the user's list (aliases allowed, order kept) or the found names."""
    if classes is None:
        return canonical_order(found)
    return tuple(resolve_class(c, where) for c in classes)


def load_folder(root: str | os.PathLike, *, classes: Sequence[str] | None = None) -> DatasetIndex:
    """Index a ``root/<split>/<class>/<image>`` tree.

    Args:
        root: Folder whose subfolders are splits (``train``, ``val``, ``test``; the
            aliases training/validation/valid/testing are normalised).
        classes: Class order to use (canonical names or aliases); default: the classes
            found, in canonical order.

    Returns:
        Index named ``"folder"``.

    Raises:
        DataError: No split folders, an empty split, an unknown class folder, or a
            class not in ``classes``.
    """
    root = require_dir(Path(root), "Dataset")
    split_dirs = _visible_dirs(root)
    if not split_dirs:
        raise DataError(f"Dataset folder {root} has no <split>/<class>/ subfolders.")
    dropped: dict[str, int] = {}
    found = [
        (SPLIT_ALIASES.get(d.name.lower(), d.name), path, name)
        for d in split_dirs
        for path, name in scan_class_folders(d, _canonical_folder, dropped)
    ]
    cls = resolve_classes(classes, [n for _, _, n in found], f"Option classes for {root}")
    samples = [
        Sample(str(path), class_index(name, cls, f"Image {path}"), split)
        for split, path, name in found
    ]
    return DatasetIndex("folder", cls, samples, str(root), meta={"dropped": dropped})
