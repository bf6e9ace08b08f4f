"""``facefactors bench fit3d --json``: accuracy and speed of the 3D face fit on synthetic faces.

Flattens :func:`facefactors.experiments.fit3d_accuracy.accuracy` into one JSON object:
``<source>/<fit|mean_face>/<metric>`` for the landmark sources measured (``true``: the
renderer's exact landmarks; ``net``: a LandmarkNet's, with ``--landmark-net``).
"""

from __future__ import annotations

from typing import Any


def bench_fit3d(
    faces: int = 64,
    size: int = 64,
    steps: int = 40,
    threads: int | None = None,
    landmark_net: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit ``faces`` rendered TEST faces; errors of the fit and of the mean-face reference."""
    import torch

    from facefactors.experiments.fit3d_accuracy import accuracy
    from facefactors.fit3d.fitter import Fit3dConfig

    if threads is not None:
        torch.set_num_threads(threads)
    net = None
    if landmark_net is not None:
        from facefactors.faces.landmark_net import load_landmark_net

        net = load_landmark_net(landmark_net)[0]
    res = accuracy(faces, Fit3dConfig(size=size, steps=steps), seed=seed, landmark_net=net)
    out: dict[str, Any] = {
        "faces": res["faces"],
        "size": res["size"],
        "steps": res["steps"],
        "threads": torch.get_num_threads(),
    }
    for source, r in res["sources"].items():
        out[f"{source}/landmark_input_px"] = round(r["landmark_input_px"], 3)
        for which in ("fit", "mean_face"):
            for k, v in r[which].items():
                out[f"{source}/{which}/{k}"] = round(v, 4)
    return out
