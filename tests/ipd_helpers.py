"""Shared helpers for the IPD-FER tests: tiny configs and in-memory datasets."""

from __future__ import annotations

import pytest
import torch

from facefactors.ipd.config import SEVEN_CLASSES, IPDConfig
from facefactors.ipd.data import DataBundle, LabelledView


def tiny_config(variant: str = "ipd", **train) -> IPDConfig:
    """A config with 4-channel backbones and decoder at 32 px, logging every step."""
    cfg = IPDConfig()
    cfg.model.variant = variant
    cfg.model.width = 4
    cfg.model.decoder_channels = 4
    cfg.data.size = 32
    cfg.train.batch_size = 4
    cfg.train.epochs = 2
    cfg.train.lr = 1e-3
    cfg.train.log_every = 1
    cfg.train.sample_every = 0
    cfg.train.threads = 1  # tiny ops: extra threads only add contention
    cfg.train.device = "cpu"
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def random_bundle(n: int = 12, size: int = 32, seed: int = 0) -> DataBundle:
    """Random images with fixed labels (every class and pose bin present)."""
    g = torch.Generator().manual_seed(seed)
    items = [
        {
            "image": torch.rand(3, size, size, generator=g) * 2 - 1,
            "expression": i % len(SEVEN_CLASSES),
            "pose_bin": i % 5,
        }
        for i in range(n)
    ]
    return DataBundle(
        LabelledView(items, range(n)), LabelledView(items, range(min(n, 4))), list(SEVEN_CLASSES)
    )


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (more only add contention on a busy box).

    Import it into a test module to make it apply there.
    """
    torch.set_num_threads(1)
    yield
