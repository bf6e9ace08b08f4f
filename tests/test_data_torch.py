"""FaceDataset, augmentation and the load_dataset registry."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from PIL import Image

from facefactors.data.io import to_tensor
from facefactors.data.records import DatasetIndex, Sample
from facefactors.data.registry import LOADERS, load_dataset, loader_options
from facefactors.data.torchdata import FaceDataset, augment
from facefactors.data.writers import write_ckplus_sequence, write_rafdb
from facefactors.errors import ConfigError, DataError


def _gradient(h=16, w=16):
    x = np.arange(w, dtype=np.uint8)[None, :] * 15
    return np.repeat(np.repeat(x, h, 0)[:, :, None], 3, 2)


def _png_index(tmp_path, n=3, meta=None):
    samples = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.fromarray(_gradient()).save(p)
        samples.append(Sample(str(p), i % 2, "train", meta=(meta or [{}] * n)[i]))
    return DatasetIndex("t", ("happy", "sad"), samples, str(tmp_path))


def test_item_from_file(tmp_path):
    ds = FaceDataset(_png_index(tmp_path), "train", 16)
    item = ds[1]
    assert tuple(item["image"].shape) == (3, 16, 16)
    torch.testing.assert_close(item["image"], to_tensor(_gradient()))
    assert item["expression"] == 1 and item["pose_bin"] == -1 and item["identity"] == -1
    assert math.isnan(item["yaw"]) and item["index"] == 1
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert tuple(batch["image"].shape) == (3, 3, 16, 16)
    assert batch["expression"].tolist() == [0, 1, 0]


def test_item_from_fer_pixels():
    px = np.arange(48 * 48, dtype=np.int64).reshape(48, 48) % 256
    idx = DatasetIndex("f", ("neutral",), [Sample(None, 0, "val", pixels=px.astype(np.uint8))])
    img = FaceDataset(idx, "val", 48)[0]["image"]
    expected = torch.from_numpy(px / 255.0 * 2 - 1).float()
    for c in range(3):
        torch.testing.assert_close(img[c], expected)


def test_pose_sources(tmp_path):
    idx = _png_index(tmp_path, meta=[{"pose_bin": 2, "yaw": 25.0}, {}, {"pose_bin": 0}])
    assert [FaceDataset(idx, "train", 8)[i]["pose_bin"] for i in range(3)] == [2, -1, 0]
    assert FaceDataset(idx, "train", 8)[0]["yaw"] == 25.0
    seq = FaceDataset(idx, "train", 8, pose=[4, 3, 1])
    assert [seq[i]["pose_bin"] for i in range(3)] == [4, 3, 1]
    mapping = FaceDataset(idx, "train", 8, pose={idx.samples[2].path: 3})
    assert [mapping[i]["pose_bin"] for i in range(3)] == [-1, -1, 3]
    with pytest.raises(DataError, match="pose list has 2 entries but split 'train' of t has 3"):
        FaceDataset(idx, "train", 8, pose=[1, 2])
    with pytest.raises(DataError, match="no samples in split 'test'"):
        FaceDataset(idx, "test", 8)


def test_flip_negates_yaw_keeps_bin(tmp_path):
    idx = _png_index(tmp_path, n=1, meta=[{"pose_bin": 2, "yaw": 25.0}])
    flip = functools.partial(augment, flip_p=1.0, min_scale=1.0)
    item = FaceDataset(idx, "train", 16, transform=flip)[0]
    assert item["yaw"] == -25.0 and item["pose_bin"] == 2
    torch.testing.assert_close(item["image"], to_tensor(_gradient()[:, ::-1].copy()))


def test_augment_crop_is_seeded_and_keeps_shape():
    img = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    a, fa = augment(img, np.random.default_rng(5), min_scale=0.6)
    b, fb = augment(img, np.random.default_rng(5), min_scale=0.6)
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert fa == fb
    same, flipped = augment(img, np.random.default_rng(1), flip_p=0.0, min_scale=1.0)
    np.testing.assert_array_equal(same, img)
    assert not flipped
    outs = {augment(img, np.random.default_rng(s), min_scale=0.6)[0].tobytes() for s in range(6)}
    assert len(outs) > 1


def test_dataset_augmentation_follows_torch_seed(tmp_path):
    ds = FaceDataset(_png_index(tmp_path, n=1), "train", 16, transform=augment)
    torch.manual_seed(3)
    first = [ds[0]["image"] for _ in range(4)]
    torch.manual_seed(3)
    second = [ds[0]["image"] for _ in range(4)]
    for x, y in zip(first, second):
        torch.testing.assert_close(x, y)


def test_registry_and_identity(tmp_path):
    img = np.zeros((10, 10, 3), np.uint8)
    write_rafdb(
        tmp_path / "raf", [("train_00001.jpg", "sad", img), ("test_0001.jpg", "anger", img)]
    )
    idx = load_dataset("rafdb", tmp_path / "raf")
    assert idx.name == "rafdb" and len(idx) == 2
    for i in range(10):
        frames = [np.full((8, 8), 40 * k, np.uint8) for k in range(4)]
        write_ckplus_sequence(tmp_path / "ck", f"S{i:03d}", "001", frames, "happy")
    ck = load_dataset("ckplus6", tmp_path / "ck", neutral="class")
    assert ck.classes[0] == "neutral" and len(ck) == 40
    ds = FaceDataset(ck, "all", 8)
    assert ds[0]["identity"] == 0 and ds[4]["identity"] == 1 and ds[39]["identity"] == 9
    with pytest.raises(DataError, match="Unknown dataset 'raf'; known datasets are rafdb, ferplus"):
        load_dataset("raf", tmp_path)
    with pytest.raises(ConfigError, match="Dataset ckplus6 has no option 'num_classes'"):
        load_dataset("ckplus6", tmp_path / "ck", num_classes=7)


def test_registry_names():
    want = {"rafdb", "ferplus", "affectnet7", "affectnet8", "ckplus6", "ckplus7", "sfew"}
    assert want | {"folder", "csv"} <= set(LOADERS)
    assert loader_options("affectnet8") == ("images_dir", "missing", "check_files")
