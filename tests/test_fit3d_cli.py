"""`facefactors fit3d` end to end: rendered PNGs → prepare → fit3d → tensorial train → FaceEditor.

The faces are written as plain PNG files, so the trainer sees only the fitted pseudo
ground truth. Landmarks come from a small LandmarkNet trained here on other synthetic
faces (MTCNN is left out: its weights are not part of the test environment, and it
is unreliable on 32-px renders); prepare runs with --no-detect and no MTCNN weights.
"""

from __future__ import annotations

import pytest
import torch

from facefactors.cli import main


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "empty-home"))


@pytest.fixture
def prepared(tmp_path, no_weights):
    faces, prep = tmp_path / "faces", tmp_path / "prep"
    argv = ["synth", "--layout", "folder", "--out", str(faces), "--identities", "4"]
    assert main([*argv, "--per-identity", "6", "--size", "32"]) == 0
    assert main(
        ["prepare", "folder", str(faces), "--out", str(prep), "--no-detect", "--size", "32",
         "--format", "png", "--subject-regex", r"^(S\d+)_"]
    ) == 0  # fmt: skip
    return prep


@pytest.fixture
def landmark_net(tmp_path):
    from facefactors.faces.landmark_net import (
        LandmarkNetConfig,
        save_landmark_net,
        train_landmark_net,
    )

    cfg = LandmarkNetConfig(size=32, width=8, identities=6, per_identity=6, steps=40, batch_size=32)
    path = tmp_path / "lm.pt"
    save_landmark_net(path, train_landmark_net(cfg), cfg)
    return str(path)


def _fit3d(prep, net, *extra) -> int:
    argv = ["fit3d", str(prep), "--landmarks", "net", "--landmark-net", net, "--size", "32"]
    return main([*argv, "--steps", "5", "--chunk", "10", *extra])


def test_fit3d_then_train_then_edit(prepared, landmark_net, tmp_path, capsys):
    from facefactors.fit3d.store import load_fits
    from facefactors.inference.editor import FaceEditor
    from facefactors.tensorial.batch import PSEUDO_GT

    assert _fit3d(prepared, landmark_net) == 0
    assert "fitted 24 of 24 faces" in capsys.readouterr().out
    fits, manifest = load_fits(prepared)
    assert len(fits) == 24 and manifest["parts"] == [
        "part-00000.npz",
        "part-00001.npz",
        "part-00002.npz",
    ]
    row = next(iter(fits.values()))
    assert set(PSEUDO_GT) <= set(row) and row["normals"].shape == (3, 32, 32)

    # A rerun reuses every finished part and leaves them as they were.
    before = (prepared / "fit3d" / "part-00001.npz").read_bytes()
    assert _fit3d(prepared, landmark_net) == 0
    assert "3 parts reused" in capsys.readouterr().out
    assert (prepared / "fit3d" / "part-00001.npz").read_bytes() == before

    run = tmp_path / "run"
    sets = ["data.source=prepared", f"data.root={prepared}", "data.val_every=4",
            "train.max_steps=2", "train.batch_size=8", "train.epochs=1", "train.threads=1"]  # fmt: skip
    argv = ["train", "--config", "tensorial_synth_quick", "--out", str(run)]
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    err = capsys.readouterr().err
    assert "18 training and 6 validation faces" in err and "every 4th subject" in err
    editor = FaceEditor.from_checkpoint(run)
    assert editor.input_size == 32
    crop = next((prepared / "images").rglob("*.png"))
    codes = editor.encode_one(str(crop), aligned=True)
    assert editor.decode(codes).shape == (1, 32, 32, 3)


def test_fit3d_counts_a_corrupt_image_and_names_it(prepared, landmark_net, capsys):
    import csv

    rows = list(csv.DictReader(open(prepared / "annotations.csv")))
    bad = prepared / rows[3]["path"]
    bad.write_bytes(b"not a png")
    assert _fit3d(prepared, landmark_net) == 0
    assert "fitted 23 of 24 faces (skipped unreadable: 1" in capsys.readouterr().out
    from facefactors.fit3d.store import read_part

    part = read_part(prepared / "fit3d" / "part-00000.npz")
    assert part["skipped_path"].tolist() == [rows[3]["path"]]
    assert str(bad) in part["skipped_reason"][0]


def test_fit3d_errors_name_the_file(tmp_path, capsys):
    assert main(["fit3d", str(tmp_path)]) == 2
    assert f"{tmp_path / 'annotations.csv'} does not exist" in capsys.readouterr().err


def test_fit3d_part_that_is_not_an_npz_is_named(tmp_path):
    from facefactors.errors import DataError
    from facefactors.fit3d.store import read_part

    bad = tmp_path / "part-00000.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match=str(bad)):
        read_part(bad)


def test_training_config_errors_name_the_key(prepared, tmp_path, capsys):
    argv = ["train", "--config", "tensorial_synth_quick", "--out", str(tmp_path / "r")]
    assert main([*argv, "--set", "data.source=prepared"]) == 2
    assert "data.root" in capsys.readouterr().err
    assert main([*argv, "--set", f"data.root={prepared}"]) == 2
    assert "data.source" in capsys.readouterr().err
    assert main([*argv, "--set", "data.rooot=x"]) == 2
    assert "data.rooot" in capsys.readouterr().err
    # A prepared folder that has not been fitted: the error names the missing file.
    assert main([*argv, "--set", "data.source=prepared", "--set", f"data.root={prepared}"]) == 2
    assert str(prepared / "fit3d" / "fit3d.json") in capsys.readouterr().err


def test_resampled_maps_stay_unit_normals():
    from facefactors.tensorial.prepared import resample_maps

    nrm = torch.nn.functional.normalize(torch.randn(3, 8, 8), dim=0)
    mask = torch.ones(1, 8, 8)
    out = resample_maps({"normals": nrm, "mask": mask}, 4)
    assert out["normals"].shape == (3, 4, 4) and out["mask"].shape == (1, 4, 4)
    assert torch.allclose(out["normals"].norm(dim=0), torch.ones(4, 4), atol=1e-5)
