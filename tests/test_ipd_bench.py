"""Smoke test of the IPD-FER speed benchmarks (slow: they build full-width networks)."""

from __future__ import annotations

import pytest

from facefactors.bench.infer import bench_infer
from facefactors.bench.train import bench_train


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
