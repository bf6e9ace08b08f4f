"""Dataset loaders, image I/O and transforms (DESIGN.md §4, §5).

Entry points:
    ``load_dataset(name, root, **opts)`` (:mod:`facefactors.data.registry`) returns a
    :class:`~facefactors.data.records.DatasetIndex`;
    :class:`~facefactors.data.torchdata.FaceDataset` turns one split into tensors.

Import the submodules directly; this package imports nothing at load time so that
``import facefactors.data.labels`` stays cheap (no torch, no PIL).
"""

from __future__ import annotations

import importlib

# name -> submodule; resolved lazily by __getattr__ so importing the package is free.
_EXPORTS = {
    "load_dataset": "registry",
    "LOADERS": "registry",
    "DatasetIndex": "records",
    "Sample": "records",
    "fold_split": "records",
    "ckplus_fold_split": "ckplus",
    "FaceDataset": "torchdata",
    "augment": "torchdata",
    "load_image_rgb": "io",
    "to_tensor": "io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'facefactors.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"facefactors.data.{_EXPORTS[name]}"), name)
