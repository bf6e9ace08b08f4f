"""What a user runs on images and videos.

- :mod:`~facefactors.inference.recognizer`: :class:`ExpressionRecognizer` (detect,
  align, head pose, classify), the Python entry point.
- :mod:`~facefactors.inference.editor`: :class:`FaceEditor` (tensorial codes, swaps,
  interpolation, 3D mesh, paste back into the photo).
- :mod:`~facefactors.inference.predict`: the ``facefactors predict`` runner.
- :mod:`~facefactors.inference.predictions`: per-face results and their tables.
- :mod:`~facefactors.inference.tracking`: face tracking across video frames.
- :mod:`~facefactors.inference.io`: input expansion, video frames, output files.

``from facefactors.inference import ExpressionRecognizer`` (or ``FaceEditor``) works;
the class is imported on first use, so importing this package loads neither torch nor a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facefactors.inference.editor import FaceEditor
    from facefactors.inference.recognizer import ExpressionRecognizer

__all__ = ["ExpressionRecognizer", "FaceEditor"]


def __getattr__(name: str) -> Any:
    if name == "ExpressionRecognizer":
        from facefactors.inference.recognizer import ExpressionRecognizer

        return ExpressionRecognizer
    if name == "FaceEditor":
        from facefactors.inference.editor import FaceEditor

        return FaceEditor
    raise AttributeError(f"module 'facefactors.inference' has no attribute {name!r}")
