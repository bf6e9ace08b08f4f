"""The tensorial evaluation: its metrics by hand, the truth renders, and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facefactors.experiments import tensorial_edits as E
from facefactors.experiments.tensorial_eval import render_test_set, vertex_error_mm

CLASSES = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"]


@pytest.fixture(scope="module")
def test_set():
    return render_test_set(3, 4, 32, 0, (1.0, 1.6), CLASSES)


def test_masked_psnr_counts_only_the_mask() -> None:
    target = torch.zeros(1, 3, 2, 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[..., 0, 0] = 1.0  # error 0.5 in [0, 1] units, inside the mask
    pred[..., 1, 1] = -1.0  # error 0.5, outside the mask
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    # MSE over the 2 masked pixels: (0.25 + 0) / 2 = 0.125 → 9.03 dB
    assert float(E.masked_psnr(pred, target, mask)) == pytest.approx(-10 * np.log10(0.125))


def test_geodesic_angle_of_a_known_rotation() -> None:
    from facefactors.synth.scene import rotation_matrix

    a = torch.as_tensor(rotation_matrix(np.array([0.0]), np.zeros(1), np.zeros(1)))
    b = torch.as_tensor(rotation_matrix(np.array([25.0]), np.zeros(1), np.zeros(1)))
    assert float(E.geodesic_deg(a, b)) == pytest.approx(25.0, abs=1e-4)
    assert float(E.geodesic_deg(b, b)) == pytest.approx(0.0, abs=1e-3)


def test_cluster_bootstrap_interval_widens_with_cluster_correlation() -> None:
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(10), 10)
    independent = rng.normal(size=100)
    shared = np.repeat(rng.normal(size=10), 10)  # each cluster moves together
    lo_i, hi_i = E.cluster_bootstrap_ci(independent, clusters)
    lo_s, hi_s = E.cluster_bootstrap_ci(shared, clusters)
    assert lo_i < independent.mean() < hi_i and lo_s < shared.mean() < hi_s
    assert hi_s - lo_s > 2 * (hi_i - lo_i)  # 10 effective samples, not 100


def test_pairs_are_of_different_people_and_factors(test_set) -> None:
    c = test_set.table.columns
    for kind in ("expression", "pose"):
        pairs = E.transfer_pairs(test_set, kind, 12)
        assert len(pairs) > 0
        s, d = pairs[:, 0], pairs[:, 1]
        assert (c["identity"][s] != c["identity"][d]).all()
        if kind == "expression":
            assert (c["expression"][s] != c["expression"][d]).all()
        else:
            assert ((c["yaw"][s] - c["yaw"][d]).abs() >= 15).all()


def test_true_targets_swap_only_the_edited_factor(test_set) -> None:
    images = test_set.table.columns["image"]
    same = np.array([[0, 0], [5, 5]])  # driver = source: the truth is the face itself
    for kind in ("expression", "pose"):
        truth = E.true_targets(test_set, same, kind)
        torch.testing.assert_close(truth["image"], images[same[:, 0]], atol=1e-5, rtol=0)
    pairs = E.transfer_pairs(test_set, "pose", 4)
    truth = E.true_targets(test_set, pairs, "pose")
    rot = test_set.table.columns["rotation"]
    torch.testing.assert_close(truth["rotation"], rot[pairs[:, 1]])  # the driver's pose
    assert not torch.allclose(truth["image"], images[pairs[:, 0]])


def test_oracle_3dmm_changes_geometry_and_keeps_the_source_texture(test_set) -> None:
    same = np.array([[0, 0]])
    torch.testing.assert_close(  # same coefficients: the oracle edit is the truth
        E.true_targets(test_set, same, "expression", geometry_only=True)["image"],
        E.true_targets(test_set, same, "expression")["image"],
    )
    pairs = E.transfer_pairs(test_set, "expression", 6)
    truth = E.true_targets(test_set, pairs, "expression")
    geo = E.true_targets(test_set, pairs, "expression", geometry_only=True)
    src = test_set.table.columns["image"][pairs[:, 0]]
    close = E.masked_psnr(geo["image"], truth["image"], truth["mask"]).mean()
    assert close > E.masked_psnr(src, truth["image"], truth["mask"]).mean() + 3  # geometry moved
    assert not torch.equal(geo["image"], truth["image"])  # ... but not the wrinkles


def test_vertex_error_ignores_a_similarity_and_sees_a_deformation() -> None:
    rng = np.random.default_rng(1)
    true = rng.normal(size=(2, 30, 3)) * 50
    moved = 1.3 * true + 7.0
    assert vertex_error_mm(moved, true) == pytest.approx([0.0, 0.0], abs=1e-9)
    bent = true.copy()
    bent[:, 0] += [3.0, 4.0, 0.0]  # one vertex 5 mm off
    assert (vertex_error_mm(bent, true) > 0.05).all()


def test_evaluate_cli_reports_tensorial_runs(tmp_path, capsys) -> None:
    from facefactors.cli import main
    from facefactors.evaluation.schema import validate_results
    from test_tensorial_train import TINY

    runs = {}
    for variant in ("tensorial", "z0"):
        run = tmp_path / variant
        sets = TINY + [f"model.variant={variant}", "train.max_steps=2", "data.synth_identities=4"]
        args = ["train", "--config", "tensorial_synth_quick", "--out", str(run)]
        assert main(args + [a for o in sets for a in ("--set", o)]) == 0
        runs[variant] = run
    out = tmp_path / "eval"
    args = ["evaluate", "--out", str(out), "--test-identities", "4", "--test-per-identity", "6"]
    args += ["--pose-judge-steps", "3"]
    args += [a for v, r in runs.items() for a in ("--run", f"{v}={r}")]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    t = results["tensorial"]
    assert set(t["latent_svm"]) == {"tensorial", "z0"}
    assert t["transfer"]["expression"]["id_cosine"] is None  # no verifier was given
    judge = t["judges"]["pose"]  # trained, saved and described
    assert judge["steps"] == 3 and (out / "landmark_judge.pt").is_file()
    pose = t["transfer"]["pose"]  # a 3-step judge may read no pose: then null, and counted
    assert 0 <= pose["pose_unreadable"] <= pose["pairs"]
    assert (pose["pose_error_deg"] is None) == (pose["pose_unreadable"] == pose["pairs"])
    assert "Pose judge: landmark head-pose estimator" in (out / "report.md").read_text()
    assert "## The tensorial model" in (out / "report.md").read_text()
    for rel in results["plots"].values():
        assert (out / rel).stat().st_size > 0


def test_pose_answer_states_the_share_of_the_turn_and_its_interval() -> None:
    from facefactors.evaluation.tensorial_section import _pose_answer

    t = {"pose_error_deg": 32.0, "noedit_pose_error_deg": 33.0, "truth_pose_error_deg": 7.0,
         "pose_gain_deg": {"mean": 1.0, "ci95": [0.4, 1.6]}}  # fmt: skip
    line = _pose_answer(t)
    assert "turns the head" in line and "3.8 % of the way" in line and "[0.4, 1.6]" in line
    t["pose_gain_deg"]["ci95"] = [-0.2, 1.6]  # an interval that holds zero proves no turn
    assert "does not measurably turn" in _pose_answer(t)
