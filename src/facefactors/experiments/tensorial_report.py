"""Evaluate trained tensorial and Z_0 runs on unseen synthetic identities: the ``tensorial``
section of ``results.json`` (documented in ``evaluation/SCHEMA.md``) and its plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facefactors.experiments.tensorial_edits import (
    measure_interpolation,
    measure_transfer,
    save_strip,
)
from facefactors.experiments.tensorial_eval import (
    TensorialTestSet,
    encode_codes,
    latent_protocol,
    reconstruction_3d,
    write_tsne,
)
from facefactors.faces.landmark_net import LandmarkNetConfig
from facefactors.tensorial.model import TensorialModel

Judge = Callable[[torch.Tensor], torch.Tensor]


def load_judges(
    verifier_path: str | Path | None, classifier_path: str | Path | None
) -> tuple[Judge | None, Judge | None]:
    """V (identity embeddings) and the expression classifier (logits), at their own sizes."""
    from facefactors.export.classifier import load_expression_model
    from facefactors.tensorial.checkpoints import load_verifier

    verifier = load_verifier(verifier_path) if verifier_path else None
    classifier = None
    if classifier_path:
        net = load_expression_model(classifier_path).eval()

        def classifier(x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] != net.input_size:
                x = F.interpolate(x, size=net.input_size, mode="bilinear", align_corners=False)
            with torch.no_grad():
                return net(x.clamp(-1, 1))

    def verify(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return verifier(x.clamp(-1, 1))

    return (verify if verifier is not None else None), classifier


def landmark_judge_settings(size: int, intensity, classes, steps: int = 1500) -> LandmarkNetConfig:
    """The pose judge for faces of ``size`` px drawn with these expression settings."""
    return LandmarkNetConfig(
        size=size, intensity=tuple(intensity), classes=tuple(classes), steps=steps
    )


def _pose_judge(
    spec: tuple[Path, LandmarkNetConfig] | None,
) -> tuple[Callable[[torch.Tensor], np.ndarray] | None, dict[str, Any] | None]:
    """The landmark pose judge and what it is (its checkpoint, settings and floor)."""
    if spec is None:
        return None, None
    from facefactors.faces.landmark_net import (
        judge_floor,
        landmark_pose,
        load_or_train_landmark_net,
    )

    path, cfg = spec
    net, cfg = load_or_train_landmark_net(path, cfg, log=print)
    info = {
        "name": "landmark head-pose estimator (LandmarkNet + calibrated 5-point model)",
        "checkpoint": str(path),
        "train_faces": cfg.identities * cfg.per_identity,
        "steps": cfg.steps,
        "floor": judge_floor(net, cfg),
    }
    return (lambda x: landmark_pose(net, x)), info


def evaluate_tensorial(
    models: dict[str, Path],
    test: TensorialTestSet,
    plot_dir: Path,
    *,
    mean_face: np.ndarray,
    classes: list[str],
    verifier_path: str | Path | None = None,
    classifier_path: str | Path | None = None,
    pose_judge: tuple[Path, LandmarkNetConfig] | None = None,
    pairs: int = 200,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The whole tensorial section.

    Args:
        models: ``tensorial`` (required) and ``z0`` (optional) → ``model.pt`` paths.
        test: the test faces.
        plot_dir: where the PNGs go (paths in the result are relative to its parent).
        mean_face: (V, 3) mean training mesh (the 3D baseline).
        classes: expression class names, in label order.
        verifier_path: V for identity cosines (a pretrain-id ``backbone.pt``).
        classifier_path: an expression model (``model.pt``) for class agreement.
        pose_judge: (checkpoint path, settings) of the landmark head-pose judge; the
            checkpoint is reused when its settings match, else trained and saved there.
            None leaves the pose errors null.
        pairs: transfer pairs per kind.

    Returns:
        (section, plots).
    """
    from facefactors.tensorial.checkpoints import load_generator
    from facefactors.training.run import save_png, tile

    plot_dir.mkdir(parents=True, exist_ok=True)
    gens = {name: load_generator(path)[0] for name, path in models.items()}
    model = gens["tensorial"]
    if not isinstance(model, TensorialModel):
        raise TypeError(f"{models['tensorial']} is not a tensorial model (a Z_0 run?).")
    verifier, classifier = load_judges(verifier_path, classifier_path)
    judge_rot, judge_info = _pose_judge(pose_judge)
    images, labels = test.table.columns["image"], test.labels()
    codes = {name: encode_codes(g, images) for name, g in gens.items()}
    section: dict[str, Any] = latent_protocol(codes, labels)
    plots = write_tsne(codes, labels, plot_dir, classes)
    section["transfer"] = {}
    for kind in ("expression", "pose"):
        res = measure_transfer(
            model, test, kind, count=pairs, verifier=verifier, classifier=classifier,
            pose_judge=judge_rot,
        )  # fmt: skip
        cols = res.pop("_grid")
        save_png(plot_dir / f"tensorial_transfer_{kind}.png", tile([c.clamp(-1, 1) for c in cols]))
        plots[f"tensorial/transfer/{kind}"] = f"plots/tensorial_transfer_{kind}.png"
        section["transfer"][kind] = res
    section["reconstruction_3d"] = reconstruction_3d(model, test, mean_face)
    section["interpolation"] = {}
    for factor in ("expression", "identity"):
        res = measure_interpolation(
            model, test, factor, count=min(pairs, 64), verifier=verifier, classifier=classifier
        )
        save_strip(res.pop("_frames"), plot_dir / f"tensorial_interp_{factor}.png")
        plots[f"tensorial/interpolation/{factor}"] = f"plots/tensorial_interp_{factor}.png"
        section["interpolation"][factor] = res
    section["test_faces"] = len(test)
    section["test_identities"] = int(len(np.unique(labels["identity"])))
    section["judges"] = {
        "verifier": str(verifier_path) if verifier_path else None,
        "classifier": str(classifier_path) if classifier_path else None,
        "pose": judge_info,
    }
    return section, plots
