"""results.json schema, validation and the report.md rendered from it."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from facefactors.errors import DataError
from facefactors.evaluation.report import render_report_md, write_report
from facefactors.evaluation.schema import (
    SCHEMA_VERSION,
    load_results,
    method_entry,
    validate_results,
    write_results_json,
)

CLASSES = ["neutral", "happy", "sad", "surprise"]
TRUE = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
YAW = np.array([0.0, 5, 12, 15, 22, 28, 33, 38, 45, -50])


def _results(tmp_path=None):
    # baseline: seed 0 gets 6/10, seed 1 gets 8/10; ipd: seeds 0, 1 get 9/10 and 10/10.
    b0 = np.array([0, 1, 2, 0, 1, 2, 1, 2, 0, 1])
    b1 = np.array([0, 1, 2, 0, 1, 2, 0, 1, 0, 1])
    i0 = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 1])
    base = method_entry([0, 1], [b0, b1], TRUE, 4, CLASSES, yaw_deg=YAW)
    ipd = method_entry([0, 1], [i0, TRUE], TRUE, 4, CLASSES, yaw_deg=YAW)
    base["leakage"] = {"identity": {"acc": 0.60, "chance_majority": 0.1, "chance_uniform": 0.1}}
    ipd["leakage"] = {"identity": {"acc": 0.25, "chance_majority": 0.1, "chance_uniform": 0.1}}
    ipd["neutral_fidelity"] = {"psnr": 21.5, "ssim": 0.8123, "id_cosine": 0.9, "n": 10}
    return {
        "schema": SCHEMA_VERSION,
        "dataset": {"name": "synth-test", "classes": CLASSES, "num_test": 10},
        "settings": {"preset": "ipd_synth_quick", "image_size": 64, "train": {"epochs": 2}},
        "notes": ["Images are 64x64 instead of 112x112."],
        "methods": {"baseline": base, "ipd": ipd},
        "plots": {"pose_subsets": "plots/pose.png", "tsne/ipd": "plots/tsne_ipd.png"},
    }


def test_method_entry_numbers():
    r = _results()
    base = r["methods"]["baseline"]
    assert base["accuracy"]["per_seed"] == [pytest.approx(0.6), pytest.approx(0.8)]
    assert base["accuracy"]["best"] == pytest.approx(0.8)
    assert base["accuracy"]["std"] == pytest.approx(np.sqrt(0.02))  # sample std of 0.6, 0.8
    assert base["report_seed"] == 1  # the best seed
    # seed 1 is wrong on samples 8 (yaw 45, true sad) and 9 (yaw -50, true neutral) only
    assert base["pose_subsets"][">30"] == {"n": 4, "acc": pytest.approx(0.5)}
    assert base["per_class"]["surprise"] is None  # no test sample of that class
    assert base["confusion"][2] == [1, 0, 2, 0]


def test_round_trip_report_contains_the_numbers(tmp_path):
    json_path, md_path = write_report(tmp_path, _results())
    stored = load_results(json_path)
    assert stored["methods"]["baseline"]["per_class"]["surprise"] is None  # NaN -> null
    md = md_path.read_text(encoding="utf-8")
    assert md == render_report_md(stored)
    assert "| baseline | 2 | 80.00 (70.00±14.14) |" in md
    assert "| ipd | 2 | 100.00 (95.00±7.07) |" in md
    assert "| Test set | Number | baseline | ipd |" in md
    assert "| Pose(>30°) | 4 | 50.00 | 100.00 |" in md
    assert "| Pose(>40°) | 2 | 0.00 | 100.00 |" in md
    assert "| ipd | identity | 25.00 | 10.00 | 10.00 | -35.00 |" in md
    assert "| ipd | 21.50 | 0.8123 | 0.9000 | 10 |" in md
    assert "![tsne/ipd](plots/tsne_ipd.png)" in md
    assert "- Images are 64x64 instead of 112x112." in md
    assert "| train.epochs | `2` |" in md
    assert "| surprise | – | – |" in md


def test_validate_names_the_missing_key():
    r = _results()
    validate_results(json.loads(json.dumps(r, default=float)))
    broken = copy.deepcopy(r)
    del broken["methods"]["ipd"]["accuracy"]["mean"]
    with pytest.raises(DataError, match=r"'methods\.ipd\.accuracy\.mean' is missing"):
        validate_results(broken)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda r: r.pop("notes"), "notes"),
        (lambda r: r.update(schema="facefactors.results/v0"), "schema"),
        (lambda r: r["dataset"].pop("classes"), "dataset.classes"),
        (lambda r: r.update(methods={}), "methods"),
        (lambda r: r["methods"]["ipd"]["accuracy"].update(n=True), "methods.ipd.accuracy.n"),
        (lambda r: r["methods"]["ipd"].update(confusion=[[1, 2]]), "methods.ipd.confusion"),
        (
            lambda r: r["methods"]["ipd"]["leakage"]["identity"].pop("chance_uniform"),
            "chance_uniform",
        ),
        (lambda r: r["methods"]["ipd"]["per_class"].update(angry=0.5), "per_class.angry"),
        (lambda r: r.update(baseline_method="nope"), "baseline_method"),
    ],
)
def test_validate_rejects(mutate, key):
    r = _results()
    mutate(r)
    with pytest.raises(DataError, match=key.replace(".", r"\.")):
        validate_results(r)


def test_write_refuses_invalid_and_load_names_the_file(tmp_path):
    r = _results()
    del r["settings"]
    with pytest.raises(DataError, match="settings"):
        write_results_json(tmp_path / "results.json", r)
    assert not (tmp_path / "results.json").exists()
    bad = tmp_path / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="broken.json"):
        load_results(bad)


def test_training_schedule_columns_appear_when_recorded(tmp_path):
    r = _results()
    r["methods"]["ipd"]["training"] = {"schedule": "joint", "epochs": 5, "batch_size": 32}
    md = render_report_md(r)
    assert "| Method | Schedule | Epochs | Seeds | Accuracy (%) |" in md
    assert "| ipd | joint | 5 | 2 | 100.00 (95.00±7.07) |" in md
    assert "| baseline | – | – | 2 |" in md  # no training record: dashes
