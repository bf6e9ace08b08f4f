"""Pseudo ground truth for a user's own photos: fit our linear face model to aligned crops.

- :mod:`.procrustes`: rotation, scale and shift from five landmarks (closed form).
- :mod:`.render`: the synthetic renderer, differentiable except for visibility.
- :mod:`.fitter`: the analysis-by-synthesis fit (:func:`fit_faces`, :class:`Fit3dConfig`).
- :mod:`.landmarks`: where a crop's landmarks come from (prepare's records, a
  landmark net, MTCNN).
- :mod:`.store`, :mod:`.run`: ``PREPARED/fit3d/`` on disk and ``facefactors fit3d``.
"""

from __future__ import annotations

from facefactors.fit3d.fitter import Fit3dConfig, FitResult, fit_faces

__all__ = ["Fit3dConfig", "FitResult", "fit_faces"]
