"""MTCNN building blocks with hand-computed expectations (no weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facefactors.faces.mtcnn import (
    crop_and_resize,
    generate_boxes,
    pyramid_scales,
    regress_boxes,
    square_boxes,
)
from facefactors.faces.mtcnn_nets import ONet, PNet, RNet


def test_pyramid_scales_hand_computed():
    # min face 24 -> first scale 0.5; a 100 px side gives 50, 35.45, 25.13, 17.82, 12.63
    # (>= 12), and the next, 8.96, is too small for a 12 px window.
    scales = pyramid_scales(100, 300, min_face_size=24, factor=0.709)
    assert scales == pytest.approx([0.5 * 0.709**k for k in range(5)])
    assert pyramid_scales(10, 10, 20, 0.709) == []


def test_generate_boxes_maps_cells_to_image_windows():
    prob = torch.zeros(2, 3, 4)
    prob[1, 2, 3] = 0.9  # image 1, row 2, column 3
    prob[0, 0, 0] = 0.5  # below the threshold
    reg = torch.arange(2 * 4 * 3 * 4, dtype=torch.float32).reshape(2, 4, 3, 4)
    out = generate_boxes(prob, reg, scale=0.5, threshold=0.6)
    assert out.shape == (1, 10)
    # Stride 2, cell 12, at scale 0.5: x = 2*3/0.5 = 12, y = 2*2/0.5 = 8, side 24.
    assert out[0, :6].tolist() == pytest.approx([1, 12, 8, 36, 32, 0.9])
    assert out[0, 6:].tolist() == reg[1, :, 2, 3].tolist()


def test_regress_and_square_boxes():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # w 20, h 40
    reg = torch.tensor([[0.1, -0.25, 0.5, 0.0]])
    assert regress_boxes(boxes, reg).tolist() == [[12.0, 10.0, 40.0, 60.0]]
    # Square of side 40 around the centre (20, 40).
    assert square_boxes(boxes).tolist() == [[0.0, 20.0, 40.0, 60.0]]


def test_crop_and_resize_pads_outside_with_zeros():
    images = np.zeros((2, 6, 8, 3), np.uint8)
    images[1] = 200
    boxes = np.array([[-2, -2, 2, 2], [4, 2, 8, 6]])
    crops = crop_and_resize(images, np.array([1, 1]), boxes, 4)
    assert crops.shape == (2, 4, 4, 3)
    # The first box is 3/4 outside the image: only its bottom-right quarter is image.
    assert (crops[0, :2] == 0).all() and (crops[0, :, :2] == 0).all()
    assert (crops[0, 2:, 2:] == 200).all()
    assert (crops[1] == 200).all()


def test_network_output_shapes():
    with torch.inference_mode():
        prob, reg = PNet()(torch.zeros(2, 3, 30, 40))
        assert prob.shape == (2, 10, 15) and reg.shape == (2, 4, 10, 15)
        assert torch.all((prob >= 0) & (prob <= 1))
        prob, reg = RNet()(torch.zeros(3, 3, 24, 24))
        assert prob.shape == (3,) and reg.shape == (3, 4)
        prob, reg, pts = ONet()(torch.zeros(3, 3, 48, 48))
        assert prob.shape == (3,) and reg.shape == (3, 4) and pts.shape == (3, 10)


@pytest.mark.parametrize("size", [(288, 384), (13, 17), (60, 80), (100, 41)])
def test_integral_area_resize_equals_torch_area_mode(size):
    import torch.nn.functional as F

    from facefactors.faces.resample import area_resize, integral_images

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 120, 160, 3), dtype=np.uint8)
    ours = area_resize(integral_images(images), size)
    ref = F.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=size, mode="area"
    )
    np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), atol=1e-4)


def test_pooling_bounds_hand_computed():
    from facefactors.faces.resample import pooling_bounds

    # 5 -> 3: bins [0, 2), [1, 4), [3, 5) (adaptive pooling overlaps neighbouring bins).
    start, end = pooling_bounds(5, 3)
    assert start.tolist() == [0, 1, 3] and end.tolist() == [2, 4, 5]


def test_mirror_points_swaps_sides():
    from facefactors.faces.mtcnn import mirror_points

    # x of left eye, right eye, nose, left and right mouth corner, then their y. The x
    # values are not mirror images of each other, so x -> 1 - x has to show.
    pts = torch.tensor([[0.1, 0.6, 0.45, 0.2, 0.75, 0.4, 0.42, 0.6, 0.8, 0.82]])
    # x -> 1 - x gives [0.9, 0.4, 0.55, 0.8, 0.25]; then left/right labels swap.
    expected = [[0.4, 0.9, 0.55, 0.25, 0.8, 0.42, 0.4, 0.6, 0.82, 0.8]]
    assert torch.allclose(mirror_points(pts), torch.tensor(expected))
    assert torch.allclose(mirror_points(mirror_points(pts)), pts)
