"""The landmark head-pose judge of generated faces (facefactors.faces.landmark_net)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.errors import CheckpointError
from facefactors.faces import landmark_net as L
from facefactors.faces.pose import geodesic_deg
from facefactors.synth.scene import rotation_matrix

SMALL = L.LandmarkNetConfig(size=32, width=16, identities=40, per_identity=10, steps=400)


def test_geodesic_angle_is_the_relative_rotation_not_the_product() -> None:
    a = rotation_matrix(np.array([30.0]), np.zeros(1), np.zeros(1))
    b = rotation_matrix(np.array([30.0]), np.array([20.0]), np.zeros(1))
    # aᵀ b = Ry(-30) Rx(20) Ry(30): a 20° turn; a b (no transpose) would be ~64°.
    assert geodesic_deg(a, b)[0] == pytest.approx(20.0, abs=1e-6)
    assert geodesic_deg(b, a)[0] == pytest.approx(20.0, abs=1e-6)


def test_pose_from_exact_landmarks_follows_the_renderer() -> None:
    from facefactors.faces.pose_calibration import synth_pose_samples

    d = synth_pose_samples("test", identities=6, per_identity=10, size=32)
    rot = L.pose_rotation(d["landmarks5"])
    true = rotation_matrix(d["yaw"], d["pitch"], d["roll"])
    err = geodesic_deg(rot, true)
    assert err.mean() < 9.0  # the 5-point model's floor is about 6°
    # A transposed (inverse) rotation, the plausible convention slip, is far off.
    assert geodesic_deg(rot.transpose(0, 2, 1), true).mean() > err.mean() + 5.0


def test_net_outputs_pixels_at_its_size_and_resizes_other_inputs() -> None:
    net = L.LandmarkNet(32, 8).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 32, 32))
        big = net(torch.zeros(2, 3, 64, 64))  # a 64-px decode is read at 32 px
    assert out.shape == (2, 5, 2) and torch.allclose(out, big, atol=1e-5)
    with pytest.raises(ValueError, match="divisible by 8"):
        L.LandmarkNet(30)


def test_random_blur_blurs_about_half_and_keeps_flat_images_flat() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    y = L.random_blur(x, g)
    changed = (y - x).flatten(1).abs().amax(1) > 1e-6
    assert 16 < int(changed.sum()) < 48
    assert y[changed].std() < x[changed].std()  # smoothing lowers the pixel spread
    flat = torch.full((8, 3, 16, 16), 0.3)
    assert torch.allclose(L.random_blur(flat, g), flat, atol=1e-6)  # normalised kernels


@pytest.fixture(scope="module")
def trained() -> L.LandmarkNet:
    return L.train_landmark_net(SMALL)


def test_training_beats_the_mean_landmarks_on_unseen_people(trained) -> None:
    test = L._faces(SMALL, "test", 6, 10)
    pred = L.predict_landmarks(trained, test["image"])
    train = L._faces(SMALL, "train", SMALL.identities, SMALL.per_identity)
    mean = train["landmarks5"].mean(0, keepdim=True).expand_as(test["landmarks5"])
    err = (pred - test["landmarks5"]).norm(dim=-1).mean()
    base = (mean - test["landmarks5"]).norm(dim=-1).mean()
    assert err < 0.85 * base, (float(err), float(base))
    # The pose it reads beats the mean face's pose by far (the judge sees the turn).
    true = test["rotation"].double().numpy()
    judged = geodesic_deg(L.landmark_pose(trained, test["image"]), true).mean()
    constant = geodesic_deg(L.pose_rotation(mean.double().numpy()), true).mean()
    assert judged < 0.7 * constant, (judged, constant)
    floor = L.judge_floor(trained, SMALL, identities=6)
    assert floor["faces"] == 60 and floor["pose_deg"] == pytest.approx(judged, rel=1e-6)


def test_checkpoint_round_trip_and_reuse(tmp_path, trained) -> None:
    path = tmp_path / "judge.pt"
    L.save_landmark_net(path, trained, SMALL)
    net, cfg = L.load_landmark_net(path)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert cfg == SMALL and torch.equal(
        L.predict_landmarks(net, x), L.predict_landmarks(trained, x)
    )
    before = path.stat().st_mtime_ns
    L.load_or_train_landmark_net(path, SMALL)
    assert path.stat().st_mtime_ns == before  # same settings: reused, not retrained
    other = L.LandmarkNetConfig(size=32, width=8, identities=4, per_identity=2, steps=2)
    _, got = L.load_or_train_landmark_net(path, other)
    assert got == other and L.load_landmark_net(path)[1] == other
    torch.save({"format": "something else", "model": {}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not a landmark judge"):
        L.load_landmark_net(tmp_path / "bad.pt")


def test_a_broken_face_is_unreadable_not_an_error() -> None:
    from facefactors.faces.pose import readable_landmarks

    good = np.array([[10.0, 12], [22, 12], [16, 18], [11, 24], [21, 24]])
    upside_down = good * [1, -1] + [0, 40]  # the mouth above the eyes
    collapsed = np.full((5, 2), 16.0)
    lm = np.stack([good, upside_down, collapsed])
    assert readable_landmarks(lm).tolist() == [True, False, False]
    rot = L.pose_rotation(lm)
    assert np.isfinite(rot[0]).all() and np.isnan(rot[1:]).all()
    assert L.finite_mean(np.array([np.nan, 2.0, 4.0])) == 3.0
    assert L.finite_mean(np.array([np.nan])) is None
