"""``facefactors edit ...`` as a user runs it: files of the right size, atomic, one-sentence errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facefactors.cli import main
from test_tensorial_train import TINY


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny tensorial run and four rendered 32-px faces written as PNG files."""
    from facefactors.imaging import to_hwc_uint8
    from facefactors.tensorial.config import preset
    from facefactors.tensorial.data import build_data
    from facefactors.tensorial.train import train

    torch.set_num_threads(1)
    cfg = preset("tensorial_synth_quick", TINY)
    data = build_data(cfg)
    root = tmp_path_factory.mktemp("edit_cli")
    train(cfg, root / "run", data=data)
    faces = []
    for i, crop in enumerate(to_hwc_uint8(data.val.columns["image"][:4])):
        faces.append(root / f"face{i}.png")
        Image.fromarray(crop).save(faces[-1])
    return root, faces


def _edit(*argv) -> int:
    return main(["edit", *map(str, argv)])


@pytest.mark.parametrize("edit", ["expression", "pose", "relight"])
def test_swaps_write_images_of_the_input_size(setup, tmp_path, edit) -> None:
    root, faces = setup
    out, crop = tmp_path / f"{edit}.jpg", tmp_path / f"{edit}_crop.png"
    rc = _edit(edit, "--target", faces[0], "--driver", faces[1], "--out", out,
               "--crop-out", crop, "--checkpoint", root / "run")  # fmt: skip
    assert rc == 0
    assert Image.open(out).size == (32, 32) and Image.open(out).format == "JPEG"
    assert Image.open(crop).size == (32, 32)


def test_interpolate_writes_a_strip(setup, tmp_path) -> None:
    root, faces = setup
    out = tmp_path / "strip.png"
    assert _edit("interpolate", "--factor", "light", "--a", faces[0], "--b", faces[2],
                 "--steps", 5, "--out", out, "--checkpoint", root / "run") == 0  # fmt: skip
    strip = np.asarray(Image.open(out))
    assert strip.shape == (32, 5 * 32, 3)
    assert not np.array_equal(strip[:, :32], strip[:, -32:])  # the light walked


def test_mesh_obj_and_ply(setup, tmp_path) -> None:
    root, faces = setup
    for name in ("face.obj", "face.ply"):
        assert _edit("mesh", faces[0], "--out", tmp_path / name, "--checkpoint", root / "run") == 0
    lines = (tmp_path / "face.obj").read_text().splitlines()
    assert sum(ln.startswith("v ") and len(ln.split()) == 7 for ln in lines) == 522
    assert (tmp_path / "face.ply").read_bytes().startswith(b"ply\nformat binary_little_endian")


def test_input_errors_are_one_sentence_and_leave_nothing(setup, tmp_path, capsys) -> None:
    root, faces = setup
    out = tmp_path / "out.png"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    ipd = tmp_path / "ipd.pt"
    torch.save({"format": "facefactors.ipd.train/1"}, ipd)
    cases = [
        (["expression", "--target", bad, "--driver", faces[1]], "broken.png"),
        (["pose", "--target", tmp_path / "missing.jpg", "--driver", faces[1]], "missing.jpg"),
        (["relight", "--target", faces[0], "--driver", faces[1], "--checkpoint", ipd], "ipd.pt"),
        (["expression", "--target", faces[0], "--driver", faces[1], "--out", tmp_path / "o.gif"],
         "o.gif"),
    ]  # fmt: skip
    for argv, name in cases:
        full = [*argv]
        if "--checkpoint" not in full:
            full += ["--checkpoint", root / "run"]
        if "--out" not in full:
            full += ["--out", out]
        assert _edit(*full) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0] and err[0].endswith("."), err
    assert not out.exists() and list(tmp_path.glob("*.tmp*")) == []


@pytest.mark.filterwarnings("ignore:WARNING. model.id_checkpoint is null")
def test_neutralize_with_an_ipd_run(setup, tmp_path, capsys) -> None:
    from facefactors.ipd.train import train
    from ipd_helpers import random_bundle, tiny_config

    root, faces = setup
    train(tiny_config("ipd", epochs=1), tmp_path / "ipd", data=random_bundle(8))
    out = tmp_path / "neutral.png"
    assert _edit("neutralize", faces[0], "--out", out, "--checkpoint", tmp_path / "ipd") == 0
    assert Image.open(out).size == (32, 32)
    # A tensorial run is refused by neutralize, in one sentence naming it.
    assert (
        _edit("neutralize", faces[0], "--out", out, "--checkpoint", root / "run" / "model.pt") == 2
    )
    assert "is a tensorial model" in capsys.readouterr().err


def _write_video(path, frames, fps=10.0) -> None:
    import cv2

    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def _read_video(path) -> list[np.ndarray]:
    from facefactors.inference.io import read_video_frames

    return [f for _i, f in read_video_frames(path)]


def test_animate_writes_a_video_of_the_input_frames(setup, tmp_path) -> None:
    root, faces = setup
    crops = [np.asarray(Image.open(f)) for f in faces]
    video = tmp_path / "driver.mp4"
    _write_video(video, [crops[(i % 3) + 1] for i in range(7)])
    out = tmp_path / "anim.mp4"
    assert _edit("animate", "--template", faces[0], "--video", video, "--out", out,
                 "--aligned", "--quiet", "--checkpoint", root / "run") == 0  # fmt: skip
    frames = _read_video(out)
    assert len(frames) == 7 and frames[0].shape == (32, 32, 3)
    side = tmp_path / "side.avi"
    assert _edit("animate", "--template", faces[0], "--video", video, "--out", side,
                 "--aligned", "--side-by-side", "--quiet", "--checkpoint", root / "run") == 0  # fmt: skip
    frames = _read_video(side)
    assert len(frames) == 7 and frames[0].shape == (32, 64, 3)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert _edit("animate", "--template", faces[0], "--video", bad, "--out", tmp_path / "x.mp4",
                 "--aligned", "--quiet", "--checkpoint", root / "run") == 2  # fmt: skip
    assert not (tmp_path / "x.mp4").exists() and not list(tmp_path.glob(".*partial*"))


def test_real_photos_and_video(setup, mtcnn_weights_dir, tmp_path) -> None:
    """Grace Hopper and the astronaut through every edit command, and a 640x480 video."""
    pytest.importorskip("skimage", reason="scikit-image provides the astronaut photo")
    from facefactors.faces import samples

    root, _faces = setup
    grace, astro = tmp_path / "grace.jpg", tmp_path / "astro.png"
    Image.fromarray(samples.grace_hopper()).save(grace, quality=95)
    Image.fromarray(samples.astronaut()).save(astro)
    common = ["--checkpoint", root / "run", "--weights", mtcnn_weights_dir]
    for edit in ("expression", "pose", "relight"):
        out = tmp_path / f"{edit}.png"
        assert _edit(edit, "--target", grace, "--driver", astro, "--out", out, *common) == 0
        got, src = np.asarray(Image.open(out)), np.asarray(Image.open(grace))
        assert got.shape == src.shape
        changed = np.abs(got.astype(int) - src).max(2) > 0
        assert 0 < changed.mean() < 0.5  # the face region only
    strip = tmp_path / "strip.png"
    assert _edit("interpolate", "--factor", "expression", "--a", astro, "--b", grace,
                 "--steps", 3, "--out", strip, *common) == 0  # fmt: skip
    assert Image.open(strip).size == (96, 32)
    assert _edit("mesh", grace, "--out", tmp_path / "g.obj", *common) == 0
    video = tmp_path / "webcam.mp4"
    _write_video(video, [samples.canvas_640x480(samples.astronaut())] * 3)
    out = tmp_path / "anim.mp4"
    assert _edit("animate", "--template", grace, "--video", video, "--out", out, "--quiet",
                 *common) == 0  # fmt: skip
    frames = _read_video(out)
    assert len(frames) == 3 and frames[0].shape == (480, 640, 3)


def test_bench_edit_prints_json(tmp_path, capsys) -> None:
    """Without MTCNN weights the photo figures are null with the reason; the rest is measured."""
    import json

    argv = ["bench", "edit", "--json", "--seconds", "0.05", "--threads", "1", "--batch", "4",
            "--weights", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "edit" and out["image_size"] == 32 and out["threads"] == 1
    assert out["encode_decode_faces_per_s"] > 0
    assert out["transfer_expression_per_s"] is None and "weights" in out["skipped"]


def test_edit_gallery_draws_every_panel(setup, tmp_path) -> None:
    """The README's gallery script runs on a trained run and scores each swap against its truth."""
    import json

    from facefactors.experiments.edit_gallery import main as gallery

    root, _ = setup
    gallery(["--checkpoint", str(root / "run"), "--out", str(tmp_path), "--no-photo"])
    stats = json.loads((tmp_path / "gallery.json").read_text())
    for key in ("expression_swap_psnr", "expression_noedit_psnr", "pose_swap_psnr"):
        assert len(stats[key]) == 4 and all(5.0 < v < 60.0 for v in stats[key]), key
    # a swap changes the decode, so it cannot score exactly as the unedited decode
    assert stats["pose_swap_psnr"] != stats["pose_noedit_psnr"]
    assert 0.0 < stats["mesh_vertex_error_mm"] < 50.0
    with Image.open(tmp_path / "synthetic.png") as im:
        assert im.size[0] > 2 * im.size[1]  # nine columns, four rows
    assert (tmp_path / "mesh.png").is_file() and not (tmp_path / "photo.png").exists()
