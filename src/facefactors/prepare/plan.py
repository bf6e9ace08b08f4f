"""What ``prepare`` will do: one :class:`Job` per dataset sample, with a stable output name.

Output names depend only on the sample itself (its source path relative to the
dataset root, or the FERPlus image name), never on which subset a run handles, so
every shard, every ``--limit`` run and every rerun writes the same file for the
same sample: ``images/<split>/<relative source path>.<ext>``, where a source path
that starts with its own split folder (``test/anger/x.jpg`` of a ``folder`` tree)
does not repeat it (``images/test/anger/x.jpg``, not ``images/test/test/anger/x.jpg``).
Folders prepared before that rule keep their paths: ``annotations.csv`` lists
them, and a rerun reuses their images (:attr:`Job.legacy_rel`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facefactors.data.generic import split_name
from facefactors.data.records import DatasetIndex, Sample

IMAGE_FORMATS = ("jpg", "png")


@dataclass(frozen=True)
class Job:
    """One sample to prepare.

    Attributes:
        index: Position of the sample in the dataset (the record key; sharding uses it).
        key: Stable identity of the source (relative path, or ``pixels:<name>``).
        out_rel: Output image path relative to the output folder (POSIX separators).
        label: Canonical class name.
        sample: The dataset sample (path or inline pixels, box, landmarks, ...).
        legacy_rel: The name earlier versions gave the output when it differs
            (the split repeated); a progress record under it is still reused.
    """

    index: int
    key: str
    out_rel: str
    label: str
    sample: Sample
    legacy_rel: str | None = None


def dataset_base(index: DatasetIndex) -> Path | None:
    """Folder that sample paths are made relative to (a CSV's folder for the csv loader)."""
    if index.root is None:
        return None
    root = Path(index.root)
    return root if root.is_dir() else root.parent


def source_key(sample: Sample, base: Path | None) -> str:
    """Stable identity of a sample's source image (POSIX path or ``pixels:<name>``)."""
    if sample.path is None:
        name = sample.meta.get("image_name") or f"line{int(sample.meta.get('line', 0)):07d}"
        return f"pixels:{name}"
    # abspath, not resolve: a dataset made of symlinks keeps its own folder names.
    path = Path(os.path.abspath(sample.path))
    if base is not None:
        try:
            return path.relative_to(os.path.abspath(base)).as_posix()
        except ValueError:
            pass  # outside the dataset folder (a CSV listing absolute paths)
    return "abs/" + PurePosixPath(*path.parts[1:]).as_posix()


def output_rel(key: str, split: str, ext: str, legacy: bool = False) -> str:
    """``images/<split>/<key without suffix>.<ext>`` for a source key.

    A key whose first folder names ``split`` (``test/anger/x.jpg``) drops it;
    ``legacy=True`` gives the older name that kept it.
    """
    stem = PurePosixPath(key.removeprefix("pixels:")).with_suffix("")
    if not legacy and len(stem.parts) > 1 and split_name(stem.parts[0]) == split:
        stem = PurePosixPath(*stem.parts[1:])
    return f"images/{split}/{stem}.{ext}"


def plan_jobs(index: DatasetIndex, ext: str) -> list[Job]:
    """One job per sample of ``index``, in dataset order.

    Two different sources that would share an output name (``a.jpg`` and ``a.png``
    in one folder) get ``-2``, ``-3``... suffixes in dataset order. The same source
    listed twice (one file under two labels) keeps one image.

    Args:
        index: The dataset.
        ext: Output image format, ``"jpg"`` or ``"png"``.
    """
    base = dataset_base(index)
    names = index.label_names
    owner: dict[str, str] = {}  # output name -> source key that claimed it
    jobs = []
    for i, sample in enumerate(index.samples):
        key = source_key(sample, base)
        rel = output_rel(key, sample.split, ext)
        n = 1
        candidate = rel
        while owner.setdefault(candidate, key) != key:
            n += 1
            candidate = f"{rel[: -len(ext) - 1]}-{n}.{ext}"
        old = output_rel(key, sample.split, ext, legacy=True)
        legacy = old if candidate == rel and old != rel else None
        jobs.append(Job(i, key, candidate, names[sample.label], sample, legacy))
    return jobs


def fingerprint(jobs: list[Job]) -> str:
    """SHA-256 over every job's source, label, split, subject and fold.

    Paths are relative to the dataset root, so shards run on machines with the
    dataset mounted in different places still agree.
    """
    h = hashlib.sha256()
    for j in jobs:
        s = j.sample
        h.update(f"{j.key}\t{j.label}\t{s.split}\t{s.subject}\t{s.fold}\n".encode())
    return h.hexdigest()
