"""Shared pytest fixtures. Tests run on CPU with few threads and tiny models."""

from __future__ import annotations

import os

import pytest

# Keep numeric libraries from oversubscribing the 2 CI cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(2)
    yield
