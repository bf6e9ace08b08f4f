"""Procedural 3D faces with exact ground-truth factors (DESIGN.md §7b).

A linear face model (mean + identity basis + FACS-like AU basis, plus a
colour model), a vectorised point-splatting renderer with SH shading, and a
deterministic dataset:

- :class:`~facefactors.synth.dataset.SynthFaces` — ``torch`` dataset with
  image, neutral and frontal-neutral renders, intrinsic maps and factors.
- :func:`~facefactors.synth.dataset.render_face` — one face from explicit factors.
- :func:`~facefactors.synth.export.export_rafdb` — write a split in the RAF-DB layout.
- :mod:`~facefactors.synth.shading` — SH basis and Lambertian shading (pure functions).

Module map: ``anatomy`` (mean head), ``surfaces`` (sample grids), ``identity``
and ``expression`` (bases), ``albedo`` (texture regions), ``facemodel``
(discretised model), ``render`` (z-buffer and shading), ``scene`` (pose,
alignment, the three renders), ``sampling`` (factor distributions),
``sheets`` (contact sheets), ``bench``.

Importing this package is cheap; names below load their module on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SynthFaces": "facefactors.synth.dataset",
    "render_face": "facefactors.synth.dataset",
    "SynthConfig": "facefactors.synth.sampling",
    "export_rafdb": "facefactors.synth.export",
    "AU_IDS": "facefactors.synth.expression",
    "AU_PROTOTYPES": "facefactors.synth.expression",
    "MODEL_VERSION": "facefactors.synth.facemodel",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'facefactors.synth' has no attribute {name!r}")
