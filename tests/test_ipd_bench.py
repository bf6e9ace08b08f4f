"""Smoke test of the IPD-FER speed benchmarks (slow: they build full-width networks)."""

from __future__ import annotations

import pytest

from facefactors.ipd.bench import bench_infer, bench_train


@pytest.mark.slow
def test_bench_train_and_infer_report_their_keys() -> None:
    out = bench_train(batch=2, size=32, seconds=0.0, threads=1)
    assert out["ratio"] == pytest.approx(out["ipd_step_s"] / out["baseline_step_s"])
    assert set(out["ipd_phase_s"]) == {"e_id", "cls", "disc", "gen"}
    assert out["rounds"] >= 3 and out["ipd_step_s"] > 0
    joint = bench_train(batch=2, size=32, seconds=0.0, threads=1, schedule="joint")
    assert set(joint["ipd_phase_s"]) == {"e_id", "disc", "joint"}
    inf = bench_infer(batch=2, size=32, seconds=0.0, threads=1, dtype="fp32", compile=False)
    assert inf["images_per_s"] > 0 and inf["latency_ms_single"] > 0
    assert [r["dtype"] for r in inf["all"]] == ["fp32"]
