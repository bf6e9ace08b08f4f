"""SynthFaces determinism and splits, the RAF-DB export, and the ``synth`` CLI errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facefactors.cli import main
from facefactors.constants import CANONICAL_CLASSES, NUM_POSE_BINS, RAFDB_CODES
from facefactors.synth import expression as E
from facefactors.synth import identity as ID
from facefactors.synth.dataset import SynthFaces
from facefactors.synth.export import export_rafdb
from facefactors.synth.sampling import SynthConfig

SIZE = 48


def _same(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def ds():
    return SynthFaces("train", identities=3, per_identity=4, size=SIZE, seed=0)


def test_sample_contents(ds):
    s = ds[5]
    for k in ("image", "neutral", "frontal_neutral", "normals", "albedo", "shading"):
        assert s[k].shape == (3, SIZE, SIZE) and s[k].dtype == torch.float32
    assert s["mask"].shape == (1, SIZE, SIZE)
    assert s["au"].shape == (E.NUM_AUS,) and s["exp_coeffs"].shape == (2 * E.NUM_AUS,)
    assert s["id_coeffs"].shape == (len(ID.ID_COEFF_NAMES),)
    assert s["rotation"].shape == (3, 3) and s["sh"].shape == (3, 9)
    assert torch.allclose(s["rotation"] @ s["rotation"].T, torch.eye(3), atol=1e-5)
    assert 0 <= int(s["pose_bin"]) < NUM_POSE_BINS
    assert 0 <= int(s["expression"]) < len(CANONICAL_CLASSES)
    assert int(s["identity"]) == 5 // 4
    assert s["vertices"].shape == ds[0]["vertices"].shape  # fixed vertex count
    assert len(ds) == 12


def test_deterministic_across_calls_batches_and_workers(ds):
    a = ds[7]
    assert _same(a, ds[7])
    fresh = SynthFaces("train", identities=3, per_identity=4, size=SIZE, seed=0)
    assert _same(a, fresh[7])
    assert _same(a, ds.__getitems__([2, 7, 11])[1])  # same bits alone or in a batch
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1)
    batch = next(iter(loader))
    assert torch.equal(batch["image"][2], ds[2]["image"])


def test_different_seeds_and_samples_differ(ds):
    other = SynthFaces("train", identities=3, per_identity=4, size=SIZE, seed=1)
    assert not torch.equal(ds[0]["id_coeffs"], other[0]["id_coeffs"])
    assert (ds[0]["image"] - other[0]["image"]).abs().mean() > 0.05
    assert not torch.equal(ds[0]["image"], ds[1]["image"])
    assert torch.equal(ds[0]["id_coeffs"], ds[1]["id_coeffs"])  # same identity


def test_train_and_test_identities_are_disjoint():
    train = SynthFaces("train", identities=5, per_identity=1, size=SIZE)
    test = SynthFaces("test", identities=5, per_identity=1, size=SIZE)
    f_train, f_test = train.factors(range(5)), test.factors(range(5))
    assert not set(f_train.identity) & set(f_test.identity)
    for a in f_train.id_coeffs:
        assert not any(np.array_equal(a, b) for b in f_test.id_coeffs)


def test_classes_are_balanced_and_configurable():
    ds = SynthFaces("train", identities=4, per_identity=8, size=SIZE)
    counts = np.bincount(ds.factors(range(len(ds))).expression, minlength=8)
    assert np.all(counts == 4)
    cfg = SynthConfig(classes=("happy", "sad"))
    f = SynthFaces("train", identities=3, per_identity=4, size=SIZE, config=cfg).factors(range(12))
    assert set(f.expression) == {CANONICAL_CLASSES.index("happy"), CANONICAL_CLASSES.index("sad")}


def test_neutral_class_without_noise_renders_its_neutral():
    cfg = SynthConfig(classes=("neutral",), au_noise=0.0)
    s = SynthFaces("test", identities=1, per_identity=1, size=SIZE, config=cfg)[0]
    assert torch.equal(s["image"], s["neutral"])


def test_bad_arguments_raise_one_sentence():
    from facefactors.errors import ConfigError

    with pytest.raises(ConfigError, match="split"):
        SynthFaces("val")
    with pytest.raises(ConfigError, match="identities"):
        SynthFaces(identities=0)
    with pytest.raises(ConfigError, match="32"):
        SynthFaces(size=16)


def _parse_labels(path: Path) -> dict[str, int]:
    """Minimal RAF-DB label parser: '<name>.jpg <code>' per line."""
    out = {}
    for line in path.read_text().splitlines():
        name, code = line.split()
        out[name] = int(code)
    return out


def test_rafdb_export_parses_back(tmp_path):
    summary = export_rafdb(
        tmp_path, "train", identities=2, per_identity=4, size=32, contact_sheets=False
    )
    export_rafdb(tmp_path, "test", identities=1, per_identity=3, size=32, contact_sheets=False)
    labels = _parse_labels(tmp_path / "EmoLabel" / "list_patition_label.txt")
    assert summary["count"] == 8 and len(labels) == 8 + 3
    assert sum(n.startswith("train_") for n in labels) == 8
    z = np.load(tmp_path / "factors.npz")
    assert list(z["name"]) == list(labels)  # factors rows follow the label file
    assert list(z["label"]) == list(labels.values())
    for name, code in labels.items():
        assert code in RAFDB_CODES  # 1..7: no contempt
        canon = CANONICAL_CLASSES[z["expression"][list(labels).index(name)]]
        assert RAFDB_CODES[code] == canon
        img = Image.open(tmp_path / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"))
        assert img.size == (32, 32)
    assert z["id_coeffs"].shape == (11, len(ID.ID_COEFF_NAMES))
    assert list(z["exp_coeff_names"]) == list(E.EXP_COEFF_NAMES)
    assert z["landmarks5"].shape == (11, 5, 2)


def test_cli_writes_contact_sheets(tmp_path, capsys):
    rc = main(["synth", "--out", str(tmp_path), "--identities", "1", "--per-identity", "2",
               "--size", "32"])  # fmt: skip
    assert rc == 0
    for name in ("expressions.png", "yaw_sweep.png", "lighting.png"):
        assert Image.open(tmp_path / "contact_sheets" / name).size[0] >= 6 * 32
    assert '"count": 2' in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--identities", "0"], "--identities must be a positive integer"),
        (["--per-identity", "-3"], "--per-identity must be a positive integer"),
        (["--size", "0"], "--size must be a positive integer"),
        (["--size", "20"], "--size must be at least 32"),
        (["--split", "validation"], "Unknown split 'validation'"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, capsys, args, message):
    rc = main(["synth", "--out", str(tmp_path / "o"), *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_unwritable_out_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    rc = main(["synth", "--out", str(blocker / "sub"), "--identities", "1", "--size", "32"])
    assert rc == 2
    assert "Cannot write to output folder" in capsys.readouterr().err
