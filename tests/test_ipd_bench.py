"""Smoke tests of the IPD-FER speed benchmarks.

The default suite runs them on tiny networks (4-channel backbones and decoder, 32 px,
one setting, the minimum of rounds); the ``slow`` ones build full-width networks.
"""

from __future__ import annotations

import pytest

from facefactors.bench.infer import bench_infer
from facefactors.bench.train import bench_train

TINY = ["model.width=4", "model.decoder_channels=4"]


@pytest.mark.parametrize(
    ("schedule", "phases"),
    [("alternating", {"e_id", "cls", "disc", "gen"}), ("joint", {"e_id", "disc", "joint"})],
)
def test_bench_train_reports_its_keys_on_tiny_networks(schedule, phases) -> None:
    out = bench_train(batch=2, size=32, seconds=0.05, threads=1, schedule=schedule, overrides=TINY)
    assert (out["batch"], out["size"], out["threads"], out["device"]) == (2, 32, 1, "cpu")
    assert (out["dtype"], out["channels_last"], out["schedule"]) == ("fp32", False, schedule)
    assert out["overrides"] == TINY
    assert out["rounds"] >= 3
    assert 0 < out["baseline_step_s"] < 5 and 0 < out["ipd_step_s"] < 5
    assert out["ratio"] == pytest.approx(out["ipd_step_s"] / out["baseline_step_s"])
    assert out["ipd_images_per_s"] == pytest.approx(2 / out["ipd_step_s"])
    assert set(out["ipd_phase_s"]) == phases
    assert all(v > 0 for v in out["ipd_phase_s"].values())
    # The phases (and E_id) are the step: their medians add up to about its median.
    assert sum(out["ipd_phase_s"].values()) < 2 * out["ipd_step_s"]
    assert out["flop_ratio"] == pytest.approx(out["ipd_gflop"] / out["baseline_gflop"])
    assert 0 < out["baseline_gflop"] < out["ipd_gflop"]
    # The overrides reached the networks (full width: ~0.43 and ~4.3 GFLOP at 32 px, batch 2).
    assert out["baseline_gflop"] < 0.05 and out["ipd_gflop"] < 0.5
    # IPD-FER adds E_id, E_pose, D and the decoder (which dominates at these widths).
    assert out["flop_ratio"] > 3.0


def test_bench_infer_reports_its_keys_for_one_setting() -> None:
    inf = bench_infer(batch=2, size=32, seconds=0.05, threads=1, dtype="fp32", compile=False)
    assert [(r["backend"], r["dtype"], r["compile"]) for r in inf["all"]] == [
        ("torch", "fp32", False)
    ]
    assert (inf["batch"], inf["size"], inf["threads"], inf["device"]) == (2, 32, 1, "cpu")
    assert inf["backend"] == "torch" and inf["channels_last"] is False
    assert 0 < inf["images_per_s"] and 0 < inf["latency_ms_single"] < 5000
    assert inf["best_latency_ms_single"] == inf["latency_ms_single"]
    assert "cpu_capability" in inf


@pytest.mark.slow
def test_bench_train_and_infer_report_their_keys() -> None:
    out = bench_train(batch=2, size=32, seconds=0.0, threads=1)
    assert out["ratio"] == pytest.approx(out["ipd_step_s"] / out["baseline_step_s"])
    assert set(out["ipd_phase_s"]) == {"e_id", "cls", "disc", "gen"}
    assert out["rounds"] >= 3 and out["ipd_step_s"] > 0
    # IPD-FER runs strictly more arithmetic than the baseline (three more networks).
    assert out["flop_ratio"] == pytest.approx(out["ipd_gflop"] / out["baseline_gflop"])
    assert out["flop_ratio"] > 3.0
    joint = bench_train(batch=2, size=32, seconds=0.0, threads=1, schedule="joint")
    assert set(joint["ipd_phase_s"]) == {"e_id", "disc", "joint"}
    inf = bench_infer(batch=2, size=32, seconds=0.0, threads=1, dtype="fp32", compile=False)
    assert inf["images_per_s"] > 0 and inf["latency_ms_single"] > 0
    assert [r["dtype"] for r in inf["all"]] == ["fp32"]
    assert inf["all"][0]["backend"] == "torch"


@pytest.mark.slow
def test_bench_infer_times_onnxruntime_fp32_and_int8() -> None:
    pytest.importorskip("onnxruntime", reason="the optional extra facefactors[onnx]")
    inf = bench_infer(
        batch=2, size=32, seconds=0.0, threads=1, dtype="fp32", compile=False, onnxruntime=True
    )
    rows = [(r["backend"], r["dtype"]) for r in inf["all"]]
    assert rows == [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    for r in inf["all"]:
        assert r["images_per_s"] > 0 and r["latency_ms_single"] > 0
    assert inf["images_per_s"] == max(r["images_per_s"] for r in inf["all"])
    assert inf["best_latency_ms_single"] == min(r["latency_ms_single"] for r in inf["all"])
    assert inf["backend"] in {"torch", "onnxruntime"} and inf["threads"] == 1
    # An explicit torch setting alone does not bring in onnxruntime.
    only = bench_infer(batch=2, size=32, seconds=0.0, threads=1, dtype="fp32", compile=False)
    assert {r["backend"] for r in only["all"]} == {"torch"}
