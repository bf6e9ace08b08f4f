"""IPD-FER: identity- and pose-disentangled facial expression recognition.

Modules (import them directly; this package imports nothing at load time):

- :mod:`~facefactors.ipd.config`: ``IPDConfig`` (model, loss, train, data sections).
- :mod:`~facefactors.ipd.model`: ``IPDModel`` with E_id, E_pose, E_exp, G_dec, D, C_exp, C_p.
- :mod:`~facefactors.ipd.decoder`: ``Decoder`` (G_dec).
- :mod:`~facefactors.ipd.losses`: the paper's losses as pure functions.
- :mod:`~facefactors.ipd.phases`: Algorithm 1's three phases as data.
- :mod:`~facefactors.ipd.train`: the training loop (on :mod:`facefactors.training`).
- :mod:`~facefactors.ipd.data`: dataset factory (synthetic or real).
- :mod:`~facefactors.ipd.export`: the E_exp + C_exp inference export (read by
  :mod:`facefactors.export.classifier`).
- :mod:`~facefactors.ipd.grids`: Fig. 8–9 style image grids.
- :mod:`~facefactors.ipd.splits`, :mod:`~facefactors.ipd.warmstart`: real-data splits, warm starts.
"""
