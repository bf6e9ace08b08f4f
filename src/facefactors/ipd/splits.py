"""Train / validation / test splits of a real dataset under its protocol.

One function decides which images an IPD-FER run trains on, monitors on and is
tested on, so the trainer (:mod:`facefactors.ipd.data`) and the evaluation of
``facefactors reproduce`` can never disagree about it:

- datasets with a ``test`` split (RAF-DB, FERPlus, AffectNet, SFEW) are tested on
  it; validation is the dataset's own ``val`` split when it has one (FERPlus),
  otherwise every ``data.val_every``-th training *subject* when every training
  image has a subject id, and only without ids every ``val_every``-th image, which
  then shares people with training (:attr:`RealSplits.notes` says so, and the
  trainer's log and ``reproduce``'s report repeat it); 0 holds none out (the whole
  training split is trained on, as in the paper);
- cross-validated datasets (split ``all``) need ``data.fold``: that fold is the
  test set, the others train, and validation is every ``val_every``-th training
  *subject*, so no person is in two of the sets. CK+ brings its own folds; any
  other pool of subjects (a flat ``folder``, a CSV) is dealt into ``data.folds``
  folds by subject (:mod:`facefactors.data.subjects` gives the rule).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from facefactors.data.records import DatasetIndex, Sample, fold_split
from facefactors.data.subjects import assign_subject_folds, hold_out_subjects
from facefactors.errors import ConfigError, DataError
from facefactors.ipd.config import DataConfig


@dataclass
class RealSplits:
    """The three sets of one run, each an index whose samples all have that split name.

    Attributes:
        index: the whole dataset as loaded.
        train, val, test: indexes with splits ``train``, ``val``, ``test``; ``val``
            and ``test`` may hold no samples.
        val_by: how validation was held out: ``split`` (the dataset's own),
            ``subject`` (whole people), ``image`` (every n-th image: people shared
            with training) or ``none``.
        notes: caveats for the log and the report (one sentence each).
    """

    index: DatasetIndex
    train: DatasetIndex
    val: DatasetIndex
    test: DatasetIndex
    val_by: str = "none"
    notes: list[str] = field(default_factory=list)


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


def split_index(
    index: DatasetIndex, fold: int | None, val_every: int, folds: int | None = None
) -> RealSplits:
    """Apply the dataset's protocol (see the module docstring).

    Args:
        index: a loaded dataset.
        fold: ``data.fold``, the test fold of a cross-validated dataset.
        val_every: hold out every n-th training subject (image when subjects are
            unknown); 0: none.
        folds: ``data.folds``, the number of subject folds to deal a pool of split
            ``all`` into when its samples carry no folds of their own.

    Raises:
        ConfigError: a cross-validated dataset without ``data.fold`` (or, for a pool
            without folds, without ``data.folds``), or a fold given for a dataset
            that has train/test splits.
        DataError: an empty training set, a fold out of range, or a pool to fold
            whose images have no subject ids.
    """
    where = f"{index.name} at {index.root}"
    notes: list[str] = []
    if "all" in index.splits:
        if fold is None:
            raise ConfigError(
                f"Dataset {where} is cross-validated; set config key 'data.fold' to the test fold."
            )
        if any(s.fold is None for s in index.samples):
            if folds is None:
                raise ConfigError(
                    f"Dataset {where} has no split folders and no folds of its own; set config "
                    "key 'data.folds' to the number of person-independent folds (reproduce "
                    "--folds K does this)."
                )
            index = assign_subject_folds(index, folds)
        train_ix, test_ix = fold_split(index, fold)
        train, val = hold_out_subjects(list(train_ix.samples), val_every)
        test = list(test_ix.samples)
        val_by = "subject" if val else "none"
    else:
        if fold is not None:
            raise ConfigError(
                f"Config key 'data.fold' is {fold} but dataset {where} has fixed splits "
                f"({', '.join(index.splits)}), not folds; leave it null."
            )
        train = index.split("train")
        test = [s for s in index.samples if s.split == "test"]
        val = [s for s in index.samples if s.split == "val"]
        val_by = "split" if val else "none"
        if not val and val_every and all(s.subject is not None for s in train):
            train, val = hold_out_subjects(train, val_every)
            val_by = "subject"
        elif not val and val_every:
            # A fixed stride, so the held-out images never depend on a seed.
            val = train[val_every - 1 :: val_every]
            train = [s for i, s in enumerate(train) if (i + 1) % val_every]
            val_by = "image"
            notes.append(
                f"Validation holds out every {val_every}th training image of {where}, which has "
                "no subject ids, so validation shares people with training and its accuracy "
                "reads high; prepare with --subject-regex (or a subject column) to hold out "
                "whole people."
            )
    if not train:
        raise DataError(f"Dataset {where} leaves no training images (config key 'data.val_every').")
    return RealSplits(
        index, _named(index, train, "train"), _named(index, val, "val"),
        _named(index, test, "test"), val_by, notes,
    )  # fmt: skip


def real_splits(cfg: DataConfig) -> RealSplits:
    """Load ``cfg.source`` and split it for ``cfg.fold`` / ``cfg.val_every`` / ``cfg.folds``."""
    return split_index(load_real_index(cfg), cfg.fold, cfg.val_every, cfg.folds)
