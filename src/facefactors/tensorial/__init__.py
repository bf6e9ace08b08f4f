"""The adversarial neuro-tensorial autoencoder (the second source paper, §3).

Modules, data flowing one way:

- :mod:`~facefactors.tensorial.ops` — pure numerics: Khatri–Rao, mode products,
  the §3.4 rotation, SO(3) projection, yaw/pitch/roll.
- :mod:`~facefactors.tensorial.config` — typed configs and the ``paper`` /
  ``quick`` presets.
- :mod:`~facefactors.tensorial.nets` — encoder, decoders, projections, BEGAN D.
- :mod:`~facefactors.tensorial.model` — the model, the Z_0 baseline, ``build_model``.
- :mod:`~facefactors.tensorial.batch` — images plus pseudo ground truth.
- :mod:`~facefactors.tensorial.losses` — one function per equation.
- :mod:`~facefactors.tensorial.phases` — the D and G phases as data.

Nothing is imported here, so ``import facefactors.tensorial`` costs nothing.
"""
