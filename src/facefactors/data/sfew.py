"""SFEW 2.0 aligned faces (DESIGN.md §4).

``Train/Train_Aligned_Faces/<Angry|Disgust|Fear|Happy|Neutral|Sad|Surprise>/*.png``
and ``Val/Val_Aligned_Faces/...``. The test labels are not public, so the
validation set serves as the test set.
"""

from __future__ import annotations

import os
from pathlib import Path

from facefactors.data.generic import scan_class_folders
from facefactors.data.labels import BASIC7, SFEW_FOLDERS, class_index
from facefactors.data.parsing import require_dir
from facefactors.data.records import DatasetIndex, Sample
from facefactors.errors import DataError

SPLIT_DIRS = {
    "train": Path("Train") / "Train_Aligned_Faces",
    "test": Path("Val") / "Val_Aligned_Faces",
}


def _sfew_class(name: str, folder: Path) -> str:
    try:
        return SFEW_FOLDERS[name]
    except KeyError:
        raise DataError(
            f"Class folder {folder} is not an SFEW class (expected one of {', '.join(SFEW_FOLDERS)})."
        ) from None


def load_sfew(root: str | os.PathLike) -> DatasetIndex:
    """Index SFEW 2.0 (7 classes; ``Train`` = train, ``Val`` = test).

    Args:
        root: Folder holding ``Train/`` and ``Val/``.

    Raises:
        DataError: A missing split folder, an unknown class folder, or an empty split.
    """
    root = require_dir(Path(root), "SFEW")
    dropped: dict[str, int] = {}
    samples = []
    for split, sub in SPLIT_DIRS.items():
        split_dir = require_dir(root / sub, f"SFEW {split}")
        for path, name in scan_class_folders(split_dir, _sfew_class, dropped):
            samples.append(Sample(str(path), class_index(name, BASIC7), split))
    return DatasetIndex("sfew", BASIC7, samples, str(root), meta={"dropped": dropped})
