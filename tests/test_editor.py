"""FaceEditor with a tiny trained tensorial model: codes, swaps, walks, mesh, paste back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.errors import CheckpointError, DataError
from facefactors.experiments.tensorial_edits import decode_swapped
from facefactors.imaging import to_hwc_uint8
from facefactors.inference import FaceEditor
from facefactors.inference.faceinput import AlignedFace
from test_tensorial_train import TINY


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny tensorial run folder (two epochs, seconds) and its validation faces."""
    from facefactors.tensorial.config import preset
    from facefactors.tensorial.data import build_data
    from facefactors.tensorial.train import train

    torch.set_num_threads(1)
    cfg = preset("tensorial_synth_quick", TINY)
    data = build_data(cfg)
    out = tmp_path_factory.mktemp("tensorial_run")
    train(cfg, out, data=data)
    return out, data.val.columns["image"][:4]


@pytest.fixture(scope="module")
def editor(run) -> FaceEditor:
    return FaceEditor.from_checkpoint(run[0])


def _u8(x: torch.Tensor) -> np.ndarray:
    return to_hwc_uint8(x)


def test_codes_are_typed_and_decode_reproduces_the_model(editor, run) -> None:
    x = run[1]
    codes = editor.encode(x)
    assert len(codes) == 4
    m = editor.model.cfg
    c = codes[0]
    assert c.background.shape == (m.z_b,) and c.mask.shape == (m.z_m,)
    assert c.light.shape == (m.light_channels, 9) and c.identity.shape == (m.k_id,)
    assert c.expression.shape == (m.k_exp,) and c.rotation.shape == (3, 3)
    r = c.rotation.double()
    torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
    assert np.isfinite(c.ypr).all() and c.yaw == pytest.approx(float(c.ypr[0]))
    assert c.crop.shape == (32, 32, 3) and np.array_equal(c.matrix, np.eye(2, 3))
    # Decoding the typed codes (rotation as z_p) gives the model's own reconstruction.
    crops = editor.decode(codes)
    assert crops.shape == (4, 32, 32, 3) and crops.dtype == np.uint8
    with torch.no_grad():
        own = editor.model(x).recon
    torch.testing.assert_close(_recon(editor, codes), own, atol=1e-5, rtol=0)
    assert int(np.abs(crops.astype(int) - _u8(own).astype(int)).max()) <= 1


def _recon(editor: FaceEditor, codes) -> torch.Tensor:
    """(N, 3, S, S) float reconstruction of codes (a tiny model's edits move it by < 1 grey level)."""
    return editor.decode_output(codes if isinstance(codes, list) else [codes]).recon


def _moved(a: torch.Tensor, b: torch.Tensor) -> bool:
    # Ten times the round-off of decoding a projected rotation again (~1e-7).
    return float((a - b).abs().max()) > 1e-5


@pytest.mark.parametrize(
    "method,code,wrong",
    [("transfer_expression", "z_exp", "z_id"), ("transfer_pose", "z_p", "z_exp"),
     ("relight", "z_l", "z_p")],
)  # fmt: skip
def test_each_swap_moves_its_own_code(editor, run, method, code, wrong) -> None:
    x = run[1]
    res = getattr(editor, method)(x[0], x[1])
    assert res.crop.shape == (32, 32, 3) and res.image.shape == (32, 32, 3)
    out = _recon(editor, res.codes)
    assert np.array_equal(res.crop, _u8(out)[0])  # the crop is the decoded edited codes
    edited, unedited = decode_swapped(editor.model, x[:1], x[1:2], (code,))
    torch.testing.assert_close(out, edited, atol=2e-6, rtol=0)  # = the evaluation's swap
    assert _moved(out, unedited)  # the edit did something
    other, _ = decode_swapped(editor.model, x[:1], x[1:2], (wrong,))
    assert _moved(out, other)  # and a swap of another code gives something else


@pytest.mark.parametrize("factor", ["expression", "identity", "pose", "light"])
def test_interpolation_runs_from_a_to_the_swap(editor, run, factor) -> None:
    from facefactors.inference.editor import FACTORS

    x = run[1]
    steps = editor.interpolate(x[0], x[2], factor, steps=4)
    assert len(steps) == 4 and all(s.crop.shape == (32, 32, 3) for s in steps)
    a, b = editor.encode(x[0])[0], editor.encode(x[2])[0]
    name = FACTORS[factor]
    first, last = _recon(editor, steps[0].codes), _recon(editor, steps[-1].codes)
    torch.testing.assert_close(first, _recon(editor, a), atol=2e-6, rtol=0)
    swapped = _recon(editor, a.replace(**{name: getattr(b, name)}))
    torch.testing.assert_close(last, swapped, atol=2e-6, rtol=0)
    assert _moved(first, last)
    mid = getattr(steps[1].codes, name)  # a third of the way (the decoder projects a pose blend)
    torch.testing.assert_close(mid, torch.lerp(getattr(a, name), getattr(b, name), 1 / 3))
    with pytest.raises(DataError, match="Unknown factor"):
        editor.interpolate(x[0], x[2], "hair")


def _photo_with_face(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 200 x 160 noise photo with ``crop`` placed by a rotated, scaled transform."""
    import cv2

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    a, s = np.radians(12.0), 32 / 90  # photo -> crop: the face is 90 px wide in the photo
    m = np.array([[s * np.cos(a), -s * np.sin(a), 0.0], [s * np.sin(a), s * np.cos(a), 0.0]])
    m[:, 2] = [16, 16] - m[:, :2] @ [100, 80]  # photo (100, 80) -> crop centre
    face = cv2.warpAffine(crop, m, (200, 160), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inside = cv2.warpAffine(np.ones((32, 32), np.uint8), m, (200, 160), flags=cv2.WARP_INVERSE_MAP)
    photo[inside > 0] = face[inside > 0]
    return photo, m


def test_paste_back_keeps_every_pixel_outside_the_mask(editor, run) -> None:
    crop = editor.encode(run[1][0])[0].crop
    driver = editor.encode(run[1][1])[0]
    photo, m = _photo_with_face(crop)
    codes = editor.encode_faces([AlignedFace(crop, m, photo, "photo")])[0]
    res = editor.render([codes.replace(expression=driver.expression)])[1][0]
    assert res.image.shape == photo.shape and res.weight.shape == photo.shape[:2]
    outside = res.weight == 0
    assert np.array_equal(res.image[outside], photo[outside])
    assert 0 < (~outside).sum() < 90 * 90  # the face region, inside the crop's footprint
    assert not np.array_equal(res.image[~outside], photo[~outside])
    ys, xs = np.nonzero(~outside)
    assert 40 < xs.mean() < 160 and 30 < ys.mean() < 130


def test_mesh_from_the_fc_heads(editor, run, tmp_path) -> None:
    from facefactors.inference.mesh import mesh_vertices

    mesh = editor.reconstruct_3d(run[1][0])
    assert mesh.vertices.shape == (522, 3) and mesh.colours.shape == (522, 3)
    assert mesh.colours.dtype == np.uint8 and mesh.triangles.max() < 522
    other = editor.reconstruct_3d(run[1][2])
    assert not np.allclose(mesh.vertices, other.vertices)
    out = editor.decode_output(editor.encode(run[1][0]))
    _n, full = mesh_vertices(out.id_pred, out.exp_pred, 32)
    from facefactors.synth.facemodel import face_model

    sub = full[0][:, face_model(32).subsample].T.numpy()
    np.testing.assert_allclose(mesh.vertices, sub, atol=1e-4)
    obj = mesh.save(tmp_path / "face.obj").read_text().splitlines()
    assert sum(ln.startswith("v ") for ln in obj) == 522
    assert sum(ln.startswith("f ") for ln in obj) == len(mesh.triangles)
    data = mesh.save(tmp_path / "face.ply").read_bytes()
    head, body = data.split(b"end_header\n", 1)
    assert b"element vertex 522" in head and b"property uchar red" in head
    vert = np.frombuffer(body[: 522 * 15], dtype=[("p", "<f4", 3), ("c", "u1", 3)])
    np.testing.assert_allclose(vert["p"], mesh.vertices)
    assert np.array_equal(vert["c"], mesh.colours)
    assert len(body) == 522 * 15 + len(mesh.triangles) * 13
    with pytest.raises(DataError, match=r"\.obj or \.ply"):
        mesh.save(tmp_path / "face.stl")


def test_wrong_checkpoints_and_inputs_are_one_sentence(editor, run, tmp_path) -> None:
    from facefactors.tensorial.checkpoints import model_state
    from facefactors.tensorial.config import preset
    from facefactors.tensorial.model import Z0AutoEncoder

    torch.save({"format": "facefactors.expression/1", "weights": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a tensorial model"):
        FaceEditor.from_checkpoint(tmp_path / "other.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds neither model.pt"):
        FaceEditor.from_checkpoint(tmp_path / "empty")
    cfg = preset("tensorial_synth_quick", [*TINY, "model.variant=z0"])
    torch.save(model_state(Z0AutoEncoder(cfg.model), cfg), tmp_path / "z0.pt")
    with pytest.raises(CheckpointError, match="Z_0 baseline"):
        FaceEditor.from_checkpoint(tmp_path / "z0.pt")
    with pytest.raises(DataError, match="shows 2 faces where one is needed"):
        editor.transfer_expression(run[1][:2], run[1][2])
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png"):
        editor.relight(tmp_path / "notes.png", run[1][2])
    with pytest.raises(DataError, match="must be 32 x 32"):
        editor.encode(np.zeros((40, 40, 3), np.uint8), aligned=True)


def test_real_photos(editor, mtcnn_weights_dir, tmp_path) -> None:
    """Grace Hopper and the astronaut: detected, aligned at 32 px, edited, pasted back."""
    pytest.importorskip("skimage", reason="scikit-image provides the astronaut photo")
    from facefactors.faces import samples

    ed = FaceEditor(editor.model, weights_dir=mtcnn_weights_dir)
    grace, astro = samples.grace_hopper(), samples.astronaut()
    codes = ed.encode([grace, astro])
    assert len(codes) == 2 and codes[0].matrix.shape == (2, 3)
    assert not np.array_equal(codes[0].matrix, np.eye(2, 3))
    for edit in (ed.transfer_expression, ed.transfer_pose, ed.relight):
        res = edit(grace, astro)
        assert res.image.shape == grace.shape
        outside = res.weight == 0
        assert np.array_equal(res.image[outside], grace[outside])
        assert 1000 < (~outside).sum() < 0.5 * outside.size  # the face, not the photo
    assert len(ed.reconstruct_3d(astro).vertices) == 522


def test_a_run_whose_verifier_path_no_longer_resolves_still_loads(tmp_path, run) -> None:
    """Editing needs no verifier: a moved run with a dangling verifier path still opens."""
    from facefactors.checkpoint import load_checkpoint, save_checkpoint
    from facefactors.tensorial.checkpoints import load_generator

    path = run[0] / "model.pt"
    state = load_checkpoint(path)
    state["config"] = dict(state["config"], verifier_checkpoint="gone/backbone.pt")
    moved = tmp_path / "model.pt"
    save_checkpoint(moved, state)
    _gen, cfg = load_generator(moved)
    assert cfg.verifier_checkpoint == "gone/backbone.pt"
