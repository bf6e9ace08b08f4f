"""The uniform record every loader returns: :class:`Sample` rows in a :class:`DatasetIndex`.

A loader only parses label files and checks that images exist; decoding happens
later (:mod:`facefactors.data.io`, :class:`facefactors.data.torchdata.FaceDataset`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facefactors.errors import DataError


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled face image.

    Attributes:
        path: Image file, or None when the pixels are held inline (FER2013/FERPlus).
        label: Index into the owning :attr:`DatasetIndex.classes`; it equals
            ``len(classes)`` for neutral reference images of a class set without
            neutral (see :attr:`DatasetIndex.extra_neutral`).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (CK+, before folding).
        subject: Person id where the dataset has one (CK+ ``"S005"``), else None.
        fold: Cross-validation fold where the protocol defines one, else None.
        pixels: (48, 48) uint8 grey image for FER2013/FERPlus rows, else None.
        box: Face box ``(x, y, width, height)`` in pixels where given (AffectNet).
        landmarks: (N, 2) float32 landmark coordinates where given (AffectNet, CK+).
        meta: Anything else from the label file (valence, row number, image name, ...).
    """

    path: str | None
    label: int
    split: str
    subject: str | None = None
    fold: int | None = None
    pixels: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    landmarks: np.ndarray | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class DatasetIndex:
    """All samples of one dataset under one protocol.

    Attributes:
        name: Loader name, e.g. ``"rafdb"`` or ``"ckplus7"``.
        classes: Canonical class names; ``Sample.label`` indexes this tuple.
        samples: Every sample, all splits together, in a deterministic order.
        root: Dataset folder (or CSV file) it was read from.
        extra_neutral: True when the samples include neutral reference images
            although ``"neutral"`` is not a class (CK+ 6/7-class): those samples
            have ``label == len(classes)``. A classifier over ``classes`` must
            ignore them; IPD-FER's discriminator gives them an extra output.
        meta: Protocol facts; ``meta["dropped"]`` maps a reason to the number of
            rows the protocol skipped for it.
    """

    name: str
    classes: tuple[str, ...]
    samples: list[Sample]
    root: str | None = None
    extra_neutral: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.meta.setdefault("dropped", {})

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def label_names(self) -> tuple[str, ...]:
        """Name of every label value in use: ``classes`` plus ``"neutral"`` if extra."""
        return (*self.classes, "neutral") if self.extra_neutral else self.classes

    @property
    def neutral_label(self) -> int | None:
        """Label value of neutral samples, or None when the dataset has none."""
        names = self.label_names
        return names.index("neutral") if "neutral" in names else None

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names present, in the order train, val, test, all, then others."""
        order = {"train": 0, "val": 1, "test": 2, "all": 3}
        present = {s.split for s in self.samples}
        return tuple(sorted(present, key=lambda s: (order.get(s, 9), s)))

    @property
    def subjects(self) -> tuple[str, ...]:
        """Sorted distinct subject ids (empty when the dataset has no identities)."""
        return tuple(sorted({s.subject for s in self.samples if s.subject is not None}))

    def split(self, name: str) -> list[Sample]:
        """Samples of one split.

        Raises:
            DataError: The split has no samples.
        """
        rows = [s for s in self.samples if s.split == name]
        if not rows:
            have = ", ".join(self.splits) or "none"
            hint = " (use fold_split for cross-validation)" if self.splits == ("all",) else ""
            raise DataError(
                f"Dataset {self.name} at {self.root} has no samples in split {name!r}; "
                f"its splits are: {have}{hint}."
            )
        return rows

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of samples per split per class name, every class listed (zeros too)."""
        names = self.label_names
        out: dict[str, dict[str, int]] = {}
        for split in self.splits:
            c = Counter(s.label for s in self.samples if s.split == split)
            out[split] = {n: c.get(i, 0) for i, n in enumerate(names)}
        return out

    def with_samples(self, samples: Iterable[Sample]) -> DatasetIndex:
        """A copy of this index (same classes and meta) holding other samples."""
        return dataclasses.replace(self, samples=list(samples), meta=dict(self.meta))


def fold_split(index: DatasetIndex, k: int) -> tuple[DatasetIndex, DatasetIndex]:
    """Cross-validation split: fold ``k`` is the test set, the other folds train.

    Args:
        index: A dataset whose samples all carry a ``fold`` (CK+).
        k: Test fold, ``0 <= k < number of folds``.

    Returns:
        ``(train, test)`` indexes whose samples have split ``"train"`` / ``"test"``.

    Raises:
        DataError: The samples have no folds, or ``k`` is out of range.
    """
    folds = {s.fold for s in index.samples}
    if None in folds or not folds:
        raise DataError(f"Dataset {index.name} at {index.root} has no cross-validation folds.")
    n = int(index.meta.get("folds", max(folds) + 1))
    if not 0 <= k < n:
        raise DataError(f"Fold {k} is out of range for dataset {index.name}, which has {n} folds.")
    train = [dataclasses.replace(s, split="train") for s in index.samples if s.fold != k]
    test = [dataclasses.replace(s, split="test") for s in index.samples if s.fold == k]
    if not test or not train:
        raise DataError(f"Fold {k} of dataset {index.name} leaves an empty train or test set.")
    return index.with_samples(train), index.with_samples(test)


def line_error(path: object, lineno: int, problem: str) -> DataError:
    """A DataError whose one sentence names the file and the 1-based line number."""
    return DataError(f"{path} line {lineno}: {problem}.")


def count_drop(dropped: dict[str, int], reason: str) -> None:
    """Count one row the protocol skipped (reported in ``index.meta['dropped']``)."""
    dropped[reason] = dropped.get(reason, 0) + 1
