"""Shared pytest fixtures. Tests run on CPU with few threads and tiny models."""

from __future__ import annotations

import argparse
import os

import pytest

# Tests use tiny models, for which thread start-up costs more than it saves;
# one thread also keeps numeric libraries from oversubscribing the 2 CI cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# On a 2-core AMD EPYC, torch 2.13.0's oneDNN channels_last convolution backward at one
# thread corrupts the heap ("corrupted size vs. prev_size", SIGABRT); with two threads,
# NCHW or oneDNN off it is fine (README "Known issue"). The tests train with torch's
# native CPU kernels so that the crash cannot take the suite down
# (tests/test_predict_stream.py, inference only, turns oneDNN back on for its module).
import torch  # noqa: E402 - after OMP_NUM_THREADS, which must precede its import

torch.backends.mkldnn.enabled = False


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def mtcnn_weights_dir(request) -> str:
    """A folder with the verified MTCNN weights, fetched once per machine.

    Uses the real command (`facefactors weights fetch mtcnn`, i.e. `pip download` of
    the facenet-pytorch 2.6.0 wheel) into the pytest cache folder. Where the package
    registry cannot be reached the requesting tests are skipped with the pip error as
    the reason; they never pass without running.
    """
    from facefactors.faces import weights as W

    folder = request.config.cache.mkdir("facefactors-mtcnn")
    if all(status == "ok" for _n, _p, status in W.weights_status(folder)):
        return str(folder)
    from facefactors.commands import weights as weights_cmd

    parser = argparse.ArgumentParser()
    weights_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights", "fetch", "mtcnn", "--dir", str(folder)])
    try:
        weights_cmd.run(args)
    except W.WeightsError as exc:
        if "pip could not download" in str(exc) or "took more than" in str(exc):
            pytest.skip(f"MTCNN weights unavailable, the package registry is unreachable: {exc}")
        raise
    return str(folder)
