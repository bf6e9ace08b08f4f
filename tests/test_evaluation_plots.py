"""Plots write real, non-empty PNGs and leave no pyplot state behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facefactors.errors import DataError
from facefactors.evaluation.metrics import pose_subset_accuracy
from facefactors.evaluation.plots import (
    _wrap_title,
    plot_confusion_matrix,
    plot_image_grid,
    plot_pose_subsets,
    plot_tsne,
    tsne_embed,
)
from facefactors.imaging import to_hwc_uint8

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_side=50):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    with Image.open(path) as im:
        assert min(im.size) >= min_side


@pytest.fixture
def no_pyplot_leak():
    plt = pytest.importorskip("matplotlib.pyplot")
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def test_confusion_matrix_png(tmp_path, no_pyplot_leak):
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # a class with no samples is allowed
    out = plot_confusion_matrix(cm, ["neutral", "happy", "sad"], tmp_path / "cm.png", title="t")
    _assert_png(out)
    with pytest.raises(DataError, match="class names"):
        plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")


def test_tsne_is_seeded_and_plots(tmp_path, no_pyplot_leak):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 15)
    feats = rng.normal(size=(60, 8)) + 4.0 * np.eye(8)[labels]
    xy = tsne_embed(feats, seed=0)
    assert xy.shape == (60, 2) and np.all(np.isfinite(xy))
    np.testing.assert_allclose(xy, tsne_embed(feats, seed=0))
    out = plot_tsne(
        torch.from_numpy(feats).float(),
        labels,
        tmp_path / "tsne.png",
        class_names=["neutral", "happy", "sad", "surprise"],
        identities=np.tile(np.arange(6), 10),
    )
    _assert_png(out)
    with pytest.raises(DataError, match="N >= 3"):
        tsne_embed(feats[:2])


def test_image_grid_png(tmp_path, no_pyplot_leak):
    g = torch.Generator().manual_seed(0)
    cols = [torch.rand(5, 3, 16, 16, generator=g) * 2 - 1 for _ in range(3)]
    titles = ["real", "decode(f_id)", "decode(f_id+f_pose)"]
    out = plot_image_grid(cols, titles, tmp_path / "grid.png", max_rows=4)
    _assert_png(out)
    with pytest.raises(DataError, match="titles"):
        plot_image_grid(cols, titles[:2], tmp_path / "bad.png")
    # Long titles break after '+' so neighbouring columns do not overlap.
    assert _wrap_title("decode(f_id+f_pose+f_exp)") == "decode(f_id+\nf_pose+f_exp)"
    assert _wrap_title("true frontal_neutral") == "true\nfrontal_neutral"


def test_images_to_uint8_maps_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    out = to_hwc_uint8(x)
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 128], [255, 255]])


def test_pose_subset_plot(tmp_path, no_pyplot_leak):
    true = np.array([0, 1, 2, 0, 1, 2])
    yaw = np.array([0, 12, 25, 33, 44, 5])
    subsets = {
        "baseline": pose_subset_accuracy([0, 1, 0, 0, 2, 2], true, yaw),
        "ipd": pose_subset_accuracy(true, true, yaw),
    }
    _assert_png(plot_pose_subsets(subsets, tmp_path / "pose.png"))
    with pytest.raises(DataError, match="no methods"):
        plot_pose_subsets({}, tmp_path / "bad.png")
