"""Model-agnostic evaluation: metrics, probes, image metrics, plots and the report.

Modules (import them directly; nothing is imported here, to keep ``import
facefactors`` light):

- :mod:`.metrics`: accuracy, per-class recall, confusion matrix, F1, pose subsets,
  seed summaries and the "best (mean±std)" format.
- :mod:`.probes`: linear-probe leakage with a per-identity split.
- :mod:`.image_metrics`: PSNR, SSIM and cosine similarity in torch.
- :mod:`.plots`: confusion matrix, t-SNE, image grid and pose-subset PNGs.
- :mod:`.schema`: the ``results.json`` schema (see ``SCHEMA.md``), builder and validator.
- :mod:`.report`: ``report.md`` rendered from ``results.json``.
"""
