"""The tensorial model measured against exact ground truth on unseen synthetic identities.

Everything the paper shows in pictures or on Multi-PIE, measured here because the
synthetic faces carry every factor:

- **Table 1 protocol**: a linear SVM (10-fold, folds grouped by identity where the
  factor allows) reads identity, expression and pose from every code, for the
  tensorial model and for Z_0 (:mod:`facefactors.evaluation.latent_svm`);
- **disentanglement scores** DCI, MIG and SAP over (identity, expression, pose)
  (:mod:`facefactors.evaluation.disentanglement`);
- **edits against the truth** (:mod:`facefactors.experiments.tensorial_edits`):
  expression and pose transfer compared with the true render of the edited factors;
- **3D reconstruction** in mm after similarity alignment, against the mean face.

The pose factor is signed yaw in five bins (edges −30, −10, 10, 30 degrees), so a
code must know which way the head turns, not only how far.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.synth.scene import Factors
from facefactors.tensorial.data import FaceTable
from facefactors.tensorial.model import TensorialModel, Z0AutoEncoder

YAW_EDGES = (-30.0, -10.0, 10.0, 30.0)
FACE_CODES = ("z_l", "z_p", "z_id", "z_exp")  # the codes DCI/MIG/SAP score, as Z_0's size
ALL_CODES = ("z_b", "z_m", *FACE_CODES)


@dataclass
class TensorialTestSet:
    """Rendered test faces with their maps, and the factors that made them."""

    table: FaceTable
    factors: Factors
    size: int

    def __len__(self) -> int:
        return len(self.table)

    def labels(self) -> dict[str, np.ndarray]:
        """Discrete factors: identity, expression class and signed-yaw bin, each (N,)."""
        c = self.table.columns
        yaw = c["yaw"].numpy()
        return {
            "identity": c["identity"].numpy().astype(np.int64),
            "expression": c["expression"].numpy().astype(np.int64),
            "pose": np.digitize(yaw, YAW_EDGES).astype(np.int64),
        }


def render_test_set(
    identities: int,
    per_identity: int,
    size: int,
    seed: int,
    intensity: tuple[float, float],
    classes: list[str],
) -> TensorialTestSet:
    """The synthetic test split (identities never seen in training) with its maps."""
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.sampling import SynthConfig
    from facefactors.tensorial.data import render_table

    faces = SynthFaces(
        split="test",
        identities=identities,
        per_identity=per_identity,
        size=size,
        seed=seed,
        config=SynthConfig(expression_intensity=tuple(intensity), classes=tuple(classes)),
    )
    return TensorialTestSet(render_table(faces), faces.factors(range(len(faces))), size)


@torch.no_grad()
def encode_codes(
    generator: TensorialModel | Z0AutoEncoder, images: torch.Tensor, batch: int = 128
) -> dict[str, np.ndarray]:
    """Every code of every image: ``z_b ... z_exp`` (tensorial) or ``z0`` (Z_0), each (N, k)."""
    generator.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch):
        x = images[start : start + batch]
        if isinstance(generator, Z0AutoEncoder):
            codes = {"z0": generator.encode(x)}
        else:
            c, _ = generator.encode(x)
            codes = {k: getattr(c, k).flatten(1) for k in ALL_CODES}
        for k, v in codes.items():
            parts.setdefault(k, []).append(v.float().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def latent_protocol(
    codes: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray], seed: int = 0
) -> dict[str, Any]:
    """Table 1 (every code × factor) and DCI / MIG / SAP, for each model.

    Args:
        codes: model name → code name → (N, k) codes.
        labels: factor name → (N,) discrete labels (identity groups the folds).

    Returns:
        ``latent_svm`` (model → code → factor → acc/std/chance/...), ``dci``
        (model → disentanglement/completeness/informativeness), ``mig`` and ``sap``
        (model → score).
    """
    from facefactors.evaluation.disentanglement import dci
    from facefactors.evaluation.latent_svm import latent_svm_matrix
    from facefactors.evaluation.mig_sap import mig, sap

    factors = np.stack([labels[k] for k in ("identity", "expression", "pose")], axis=1)
    out: dict[str, Any] = {"latent_svm": {}, "dci": {}, "mig": {}, "sap": {}}
    for model, blocks in codes.items():
        out["latent_svm"][model] = latent_svm_matrix(
            blocks, labels, folds=10, seed=seed, groups=labels["identity"]
        )
        face = [blocks[k] for k in FACE_CODES if k in blocks] or list(blocks.values())
        z = np.concatenate(face, axis=1)
        out["dci"][model] = dci(z, factors, seed=seed)
        out["mig"][model] = float(mig(z, factors))
        out["sap"][model] = float(sap(z, factors, seed=seed))
    return out


def vertex_error_mm(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean per-vertex distance (mm) after a similarity alignment of ``pred`` onto ``true``.

    Args:
        pred, true: (N, V, 3) meshes in mm.

    Returns:
        (N,) errors.
    """
    from facefactors.faces.align import similarity_transform

    errs = []
    for p, t in zip(pred, true):
        m = similarity_transform(p, t)
        aligned = p @ m[:, :3].T + m[:, 3]
        errs.append(np.linalg.norm(aligned - t, axis=1).mean())
    return np.asarray(errs)


@torch.no_grad()
def reconstruction_3d(
    generator: TensorialModel, test: TensorialTestSet, mean_face: np.ndarray
) -> dict[str, float]:
    """Fig. 5 measured: B_(1)(z_exp ⊙ z_id) against the true vertices, and the mean face.

    Args:
        generator: the tensorial model.
        test: test faces (their ``vertices`` are the truth).
        mean_face: (V, 3) mean training mesh, the baseline that knows no one.
    """
    generator.eval()
    true = test.table.columns["vertices"].numpy().astype(np.float64)
    pred = []
    for start in range(0, len(test), 128):
        x = test.table.columns["image"][start : start + 128]
        pred.append(generator(x).shape_3d.float().numpy())
    model = vertex_error_mm(np.concatenate(pred).astype(np.float64), true)
    base = vertex_error_mm(np.broadcast_to(mean_face, true.shape).astype(np.float64), true)
    return {
        "model_mm": float(model.mean()),
        "mean_face_mm": float(base.mean()),
        "model_mm_std": float(model.std()),
        "faces": int(len(model)),
    }


def write_tsne(
    codes: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray], plot_dir: Path,
    classes: list[str], count: int = 400,
) -> dict[str, str]:  # fmt: skip
    """Figs. 6–7: t-SNE of z_exp by expression and of z_p by pose, beside Z_0."""
    from facefactors.evaluation.plots import plot_tsne

    plots = {}
    pose_names = ["yaw<-30", "-30..-10", "-10..10", "10..30", "yaw>30"]
    jobs = [("z_exp", "expression", classes), ("z_p", "pose", pose_names)]
    for model, blocks in codes.items():
        for code, factor, names in jobs:
            key = code if code in blocks else "z0"
            name = f"tsne_{model}_{key}_by_{factor}.png"
            plot_tsne(
                blocks[key][:count], labels[factor][:count], plot_dir / name,
                class_names=names, title=f"t-SNE of {key} ({model}) by {factor}",
            )  # fmt: skip
            plots[f"tsne/{model}/{key}/{factor}"] = f"plots/{name}"
    return plots
