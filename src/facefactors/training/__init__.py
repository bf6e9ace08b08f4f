"""What every trainer shares (IPD-FER, identity pretraining, the tensorial model).

Import the modules directly; this package imports nothing at load time.

- :mod:`~facefactors.training.run`: the run folder, ``metrics.jsonl`` and ``samples/`` grids.
- :mod:`~facefactors.training.state`: RNG capture, resumable checkpoints, exact resume.
- :mod:`~facefactors.training.distributed`: torchrun/DDP set-up and metric averaging.
- :mod:`~facefactors.training.loop`: the epoch loader, autocast, flips and progress.
- :mod:`~facefactors.training.phases`: GAN phases as data, ``requires_grad_`` per phase,
  the NaN/inf stop.
"""
