"""Who is in each image, and person-independent folds built from it.

Subjects come from a dataset's own ids (CK+ ``S005``), a CSV column, or the file
name through a regular expression (``--subject-regex``). Folds are dealt from
the subjects, never from the images, so no person is in two folds.

The fold rule (:func:`subject_folds`), the same for CK+ and for any dataset
cross-validated by ``reproduce --folds K``: sort the distinct subject ids, permute
them with ``numpy.random.default_rng(seed)`` (seed 0 unless a loader says
otherwise), and deal them round-robin, the subject at permutation position ``p``
going to fold ``p mod K``. Fold sizes in subjects differ by at most one; the
result depends only on the set of ids, not on file order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facefactors.data.records import DatasetIndex, Sample
from facefactors.errors import DataError


def compile_subject_regex(pattern: str | None, option: str = "subject_regex") -> re.Pattern | None:
    """Compile a subject pattern; None stays None.

    Raises:
        DataError: an invalid regular expression (naming the option).
    """
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DataError(
            f"Option {option} {pattern!r} is not a valid regular expression ({exc})."
        ) from None


def subject_from_name(regex: re.Pattern, path: str | Path, where: str) -> str:
    """The subject id that ``regex`` finds in the file name of ``path``.

    The id is the group named ``subject`` if the pattern has one, else group 1,
    else the whole match (``re.search`` on the name, not the folders).

    Raises:
        DataError: the pattern does not match the name, or matches an empty id.
    """
    name = Path(path).name
    m = regex.search(name)
    if m is None:
        raise DataError(
            f"{where}: subject pattern {regex.pattern!r} does not match the file name {name!r}."
        )
    if "subject" in regex.groupindex:
        subject = m.group("subject")
    else:
        subject = m.group(1) if regex.groups else m.group(0)
    if not subject:
        raise DataError(
            f"{where}: subject pattern {regex.pattern!r} finds an empty id in {name!r}."
        )
    return subject


def subject_folds(
    subjects: Iterable[str], k: int, seed: int = 0, what: str = "The dataset"
) -> dict[str, int]:
    """Deterministic subject -> fold map (the module docstring's rule).

    Args:
        subjects: subject ids, any order, repeats allowed.
        k: number of folds.
        seed: permutation seed.
        what: the dataset, for the error message.

    Raises:
        DataError: fewer subjects than folds, or no folds.
    """
    ordered = sorted(set(subjects))
    if k < 1:
        raise DataError(f"The number of folds must be at least 1, not {k}.")
    if len(ordered) < k:
        raise DataError(
            f"{what} has {len(ordered)} labelled subjects, fewer than the {k} folds asked for."
        )
    perm = np.random.default_rng(seed).permutation(len(ordered))
    return {ordered[j]: pos % k for pos, j in enumerate(perm)}


def assign_subject_folds(index: DatasetIndex, k: int, seed: int = 0) -> DatasetIndex:
    """A copy of ``index`` whose samples carry the fold of their subject.

    Raises:
        DataError: a sample without a subject id (naming its file), or too few subjects.
    """
    unknown = next((s for s in index.samples if s.subject is None), None)
    if unknown is not None:
        raise DataError(
            f"Dataset {index.name} at {index.root} cannot be cross-validated by person: image "
            f"{unknown.path} has no subject id (prepare it with --subject-regex, or a CSV "
            "subject column; --subject-regex '(.*)' makes every image its own subject)."
        )
    fold_of = subject_folds((s.subject for s in index.samples), k, seed, f"Dataset {index.name}")
    out = index.with_samples(dataclasses.replace(s, fold=fold_of[s.subject]) for s in index.samples)
    out.meta.update(folds=k, fold_seed=seed, folds_derived=True)
    return out


def hold_out_subjects(train: list[Sample], val_every: int) -> tuple[list[Sample], list[Sample]]:
    """(train, val) with every ``val_every``-th subject (in sorted order) held out whole."""
    subjects = sorted({s.subject for s in train if s.subject is not None})
    held = set(subjects[val_every - 1 :: val_every]) if val_every else set()
    return [s for s in train if s.subject not in held], [s for s in train if s.subject in held]
