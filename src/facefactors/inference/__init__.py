"""What a user runs on images and videos.

- :mod:`~facefactors.inference.recognizer`: :class:`ExpressionRecognizer` (detect,
  align, head pose, classify), the Python entry point.
- :mod:`~facefactors.inference.predict`: the ``facefactors predict`` runner.
- :mod:`~facefactors.inference.predictions`: per-face results and their tables.
- :mod:`~facefactors.inference.tracking`: face tracking across video frames.
- :mod:`~facefactors.inference.io`: input expansion, video frames, output files.

``from facefactors.inference import ExpressionRecognizer`` works; the class is
imported on first use, so importing this package loads neither torch nor a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facefactors.inference.recognizer import ExpressionRecognizer

__all__ = ["ExpressionRecognizer"]


def __getattr__(name: str) -> Any:
    if name == "ExpressionRecognizer":
        from facefactors.inference.recognizer import ExpressionRecognizer

        return ExpressionRecognizer
    raise AttributeError(f"module 'facefactors.inference' has no attribute {name!r}")
