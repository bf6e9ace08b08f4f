"""Fit and evaluate the landmark head-pose model on synthetic faces with exact poses.

``python -m facefactors.faces.pose_calibration`` refits the coefficients on the
synthetic TRAIN split, prints them in the form stored in
:data:`facefactors.faces.pose.CALIBRATION`, and reports the errors on the
TEST split (disjoint identities).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from facefactors.constants import pose_bin
from facefactors.faces.pose import PoseCalibration, estimate_pose_batch, fit_calibration

_CHUNK = 256  # faces rendered per batch


def synth_pose_samples(
    split: str, identities: int, per_identity: int, size: int = 112, seed: int = 0
) -> dict[str, np.ndarray]:
    """Exact landmarks and angles of synthetic faces.

    Returns:
        ``landmarks5`` (N, 5, 2) pixels and ``yaw``, ``pitch``, ``roll`` (N,) degrees.
    """
    from facefactors.synth.dataset import SynthFaces

    ds = SynthFaces(
        split, identities=identities, per_identity=per_identity, size=size, seed=seed, maps=False
    )
    keys = ("landmarks5", "yaw", "pitch", "roll")
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for start in range(0, len(ds), _CHUNK):
        batch = ds.batch(range(start, min(start + _CHUNK, len(ds))))
        for k in keys:
            chunks[k].append(batch[k].double().numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}


def pose_errors(calibration: PoseCalibration | None, data: dict[str, np.ndarray]) -> dict:
    """Mean absolute errors (degrees) and pose-bin accuracy of the estimator on ``data``."""
    est = estimate_pose_batch(data["landmarks5"], calibration)
    true_bins = np.array([pose_bin(y) for y in data["yaw"]])
    est_bins = np.array([pose_bin(y) for y in est[:, 0]])
    err = np.abs(est - np.stack([data["yaw"], data["pitch"], data["roll"]], axis=1))
    return {
        "n": int(len(est)),
        "yaw_mae": float(err[:, 0].mean()),
        "yaw_p95": float(np.percentile(err[:, 0], 95)),
        "pitch_mae": float(err[:, 1].mean()),
        "roll_mae": float(err[:, 2].mean()),
        "pose_bin_accuracy": float((true_bins == est_bins).mean()),
        "pose_bin_within_one": float((np.abs(true_bins - est_bins) <= 1).mean()),
    }


def calibrate_on_synth(
    identities: int = 200, per_identity: int = 10, size: int = 112, seed: int = 0
) -> tuple[PoseCalibration, dict]:
    """Fit on the synthetic train split; report errors on train and on the test split."""
    train = synth_pose_samples("train", identities, per_identity, size, seed)
    cal = fit_calibration(train["landmarks5"], train["yaw"], train["pitch"])
    test = synth_pose_samples("test", max(identities // 4, 1), per_identity, size, seed)
    return cal, {"train": pose_errors(cal, train), "test": pose_errors(cal, test)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--identities", type=int, default=200)
    p.add_argument("--per-identity", type=int, default=10)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    cal, report = calibrate_on_synth(a.identities, a.per_identity, a.size, a.seed)
    print(repr(cal))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
