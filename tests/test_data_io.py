"""Strict image decoding and tensor normalisation (facefactors.data.io)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facefactors.data.io import load_image_rgb, to_tensor
from facefactors.errors import DataError


def _rand(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_png_roundtrip_exact(tmp_path):
    img = _rand((9, 7, 3))
    Image.fromarray(img).save(tmp_path / "a.png")
    out = load_image_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (9, 7, 3)
    np.testing.assert_array_equal(out, img)


def test_grey_and_rgba_become_rgb(tmp_path):
    grey = _rand((5, 6))
    Image.fromarray(grey).save(tmp_path / "g.png")
    out = load_image_rgb(tmp_path / "g.png")
    assert out.shape == (5, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)
    rgba = _rand((4, 4, 4))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image_rgb(tmp_path / "a.png"), rgba[:, :, :3])


def test_16bit_png_is_scaled(tmp_path):
    arr = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = load_image_rgb(tmp_path / "d.png")
    np.testing.assert_array_equal(out[:, :, 0], [[0, 255], [100, 200]])


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jpg does not exist"):
        load_image_rgb(tmp_path / "nope.jpg")


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_jpeg_raises(tmp_path, keep):
    Image.fromarray(_rand((32, 32, 3))).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=r"cut\.jpg is corrupt or truncated"):
        load_image_rgb(tmp_path / "cut.jpg")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.jpg is not a readable image"):
        load_image_rgb(tmp_path / "notes.jpg")


def test_to_tensor_normalisation():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = (0, 255, 51)
    img[1, 1] = (102, 153, 204)
    t = to_tensor(img)
    assert tuple(t.shape) == (3, 2, 2) and t.dtype.is_floating_point
    # (x / 255 - 0.5) / 0.5 = 2x/255 - 1, hand-computed:
    np.testing.assert_allclose(t[:, 0, 0].numpy(), [-1.0, 1.0, -0.6], atol=1e-6)
    np.testing.assert_allclose(t[:, 1, 1].numpy(), [-0.2, 0.2, 0.6], atol=1e-6)


def test_to_tensor_grey_and_resize():
    grey = np.full((48, 48), 255, np.uint8)
    t = to_tensor(grey, 16)
    assert tuple(t.shape) == (3, 16, 16)
    assert float(t.min()) == 1.0 and float(t.max()) == 1.0
    with pytest.raises(DataError, match="uint8"):
        to_tensor(grey.astype(np.float32))
