"""Every ``facefactors bench <subject> --json`` subject, one module each.

- :mod:`~facefactors.bench.synth`: synthetic faces per second.
- :mod:`~facefactors.bench.prepare`: detection + alignment per second.
- :mod:`~facefactors.bench.video`: video frames per second with tracking.
- :mod:`~facefactors.bench.train`: one training step of each method.
- :mod:`~facefactors.bench.infer`: the inference path in several settings
  (:mod:`~facefactors.bench.ort` adds onnxruntime rows).
- :mod:`~facefactors.bench.timing`: the shared timer.
"""
