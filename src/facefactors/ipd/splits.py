"""Train / validation / test splits of a real dataset under its protocol.

One function decides which images an IPD-FER run trains on, monitors on and is
tested on, so the trainer (:mod:`facefactors.ipd.data`) and the evaluation of
``facefactors reproduce`` can never disagree about it:

- datasets with a ``test`` split (RAF-DB, FERPlus, AffectNet, SFEW) are tested on
  it; validation is the dataset's own ``val`` split when it has one (FERPlus),
  otherwise every ``data.val_every``-th training image (0: none, the whole
  training split is trained on, as in the paper);
- cross-validated datasets (CK+: split ``all``, every sample with a ``fold``) need
  ``data.fold``: that fold is the test set, the others train, and validation is
  every ``val_every``-th training *subject*, so no person is in two of the sets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from facefactors.data.records import DatasetIndex, Sample, fold_split
from facefactors.errors import ConfigError, DataError
from facefactors.ipd.config import DataConfig


@dataclass
class RealSplits:
    """The three sets of one run, each an index whose samples all have that split name.

    Attributes:
        index: the whole dataset as loaded.
        train, val, test: indexes with splits ``train``, ``val``, ``test``; ``val``
            and ``test`` may hold no samples.
    """

    index: DatasetIndex
    train: DatasetIndex
    val: DatasetIndex
    test: DatasetIndex


def _named(index: DatasetIndex, samples: list[Sample], split: str) -> DatasetIndex:
    return index.with_samples(dataclasses.replace(s, split=split) for s in samples)


def load_real_index(cfg: DataConfig) -> DatasetIndex:
    """Load ``data.source`` from ``data.root`` with ``facefactors.data``.

    Raises:
        ConfigError: unknown source or no root; DataError: missing folder.
    """
    from facefactors.data.registry import LOADERS, load_dataset

    if cfg.source not in LOADERS:
        raise ConfigError(
            f"Config key 'data.source' is '{cfg.source}'; valid sources: synth, {', '.join(LOADERS)}."
        )
    if cfg.root is None:
        raise ConfigError(
            f"Config key 'data.root' must name the folder of data.source={cfg.source}."
        )
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"Data directory {root} (config key 'data.root') does not exist.")
    return load_dataset(cfg.source, root)


def split_index(index: DatasetIndex, fold: int | None, val_every: int) -> RealSplits:
    """Apply the dataset's protocol (see the module docstring).

    Args:
        index: a loaded dataset.
        fold: ``data.fold``, the test fold of a cross-validated dataset.
        val_every: hold out every n-th training image (subject for CK+); 0: none.

    Raises:
        ConfigError: a cross-validated dataset without ``data.fold``, or a fold
            given for a dataset that has train/test splits.
        DataError: an empty training set or a fold out of range.
    """
    where = f"{index.name} at {index.root}"
    if "all" in index.splits:
        if fold is None:
            raise ConfigError(
                f"Dataset {where} is cross-validated; set config key 'data.fold' to the test fold."
            )
        train_ix, test_ix = fold_split(index, fold)
        train, test = list(train_ix.samples), list(test_ix.samples)
        subjects = sorted({s.subject for s in train if s.subject is not None})
        held = set(subjects[val_every - 1 :: val_every]) if val_every else set()
        val = [s for s in train if s.subject in held]
        train = [s for s in train if s.subject not in held]
    else:
        if fold is not None:
            raise ConfigError(
                f"Config key 'data.fold' is {fold} but dataset {where} has fixed splits "
                f"({', '.join(index.splits)}), not folds; leave it null."
            )
        train = index.split("train")
        test = [s for s in index.samples if s.split == "test"]
        val = [s for s in index.samples if s.split == "val"]
        if not val and val_every:
            # A fixed stride, so the held-out images never depend on a seed.
            val = train[val_every - 1 :: val_every]
            train = [s for i, s in enumerate(train) if (i + 1) % val_every]
    if not train:
        raise DataError(f"Dataset {where} leaves no training images (config key 'data.val_every').")
    return RealSplits(
        index, _named(index, train, "train"), _named(index, val, "val"), _named(index, test, "test")
    )


def real_splits(cfg: DataConfig) -> RealSplits:
    """Load ``cfg.source`` and split it for ``cfg.fold`` / ``cfg.val_every``."""
    return split_index(load_real_index(cfg), cfg.fold, cfg.val_every)
