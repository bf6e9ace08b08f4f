"""``load_dataset(name, root, **opts)``: one entry point for every loader.

A plain dict maps names to loader functions; each returns a
:class:`~facefactors.data.records.DatasetIndex`.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable

from facefactors.data.affectnet import load_affectnet
from facefactors.data.ckplus import load_ckplus
from facefactors.data.csvset import load_csv
from facefactors.data.ferplus import load_fer2013, load_ferplus
from facefactors.data.generic import load_folder
from facefactors.data.prepared import load_prepared
from facefactors.data.rafdb import load_rafdb
from facefactors.data.records import DatasetIndex
from facefactors.data.sfew import load_sfew
from facefactors.errors import ConfigError, DataError

LOADERS: dict[str, Callable[..., DatasetIndex]] = {
    "rafdb": load_rafdb,
    "ferplus": load_ferplus,
    "fer2013": load_fer2013,
    "affectnet7": functools.partial(load_affectnet, num_classes=7),
    "affectnet8": functools.partial(load_affectnet, num_classes=8),
    "ckplus6": functools.partial(load_ckplus, num_classes=6),
    "ckplus7": functools.partial(load_ckplus, num_classes=7),
    "sfew": load_sfew,
    "folder": load_folder,
    "csv": load_csv,
    "prepared": load_prepared,
}


def loader_options(name: str) -> tuple[str, ...]:
    """Keyword options a loader accepts (those fixed by the name excluded)."""
    fn = LOADERS[name]
    fixed = fn.keywords if isinstance(fn, functools.partial) else {}
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in fixed)


def load_dataset(name: str, root: str | os.PathLike, **opts) -> DatasetIndex:
    """Index a dataset by loader name.

    Args:
        name: One of :data:`LOADERS` (``rafdb``, ``ferplus``, ``fer2013``, ``affectnet7``,
            ``affectnet8``, ``ckplus6``, ``ckplus7``, ``sfew``, ``folder``, ``csv``, ``prepared``).
        root: Dataset folder (for ``csv``: the CSV file, or a folder with
            ``annotations.csv``).
        **opts: Loader options, e.g. ``missing="skip"`` or ``neutral="class"``.

    Raises:
        DataError: Unknown dataset name, or whatever the loader finds wrong.
        ConfigError: An option the loader does not accept.
    """
    if name not in LOADERS:
        raise DataError(f"Unknown dataset {name!r}; known datasets are {', '.join(LOADERS)}.")
    allowed = loader_options(name)
    bad = sorted(set(opts) - set(allowed))
    if bad:
        raise ConfigError(
            f"Dataset {name} has no option {bad[0]!r}; its options are {', '.join(allowed) or 'none'}."
        )
    return LOADERS[name](root, **opts)
