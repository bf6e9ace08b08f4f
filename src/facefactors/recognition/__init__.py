"""Face-recognition pretraining for the identity encoder (E_id and N of IPD-FER).

- :mod:`~facefactors.recognition.margin`: ArcFace / CosFace margin heads (pure logits functions).
- :mod:`~facefactors.recognition.data`: identity folders (``root/<identity>/*.jpg``) and
  synthetic identities rendered into memory.
- :mod:`~facefactors.recognition.verify`: LFW-style verification on held-out identities.
- :mod:`~facefactors.recognition.train`: ``PretrainConfig`` and ``pretrain``, which writes
  ``backbone.pt`` for :func:`facefactors.nets.create_backbone`.

Importing this package loads nothing heavy; import the submodules you need.
"""
