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
    ipd["reconstruction"] = {"psnr": 23.25, "ssim": 0.7, "n": 10}
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
    assert "| ipd | 23.25 | 21.50 | 0.8123 | 0.9000 | 10 |" in md  # reconstruction, neutral
    assert "![tsne/ipd](plots/tsne_ipd.png)" in md
    assert "- Images are 64x64 instead of 112x112." in md
    assert "| train.epochs | `2` |" in md
    assert "| surprise | – | – |" in md


def test_fidelity_table_shows_the_hue_and_expression_change_columns(tmp_path):
    r = _results()
    r["methods"]["ipd"]["reconstruction"] |= {
        "bg_chroma_err": 0.0412, "bg_chroma_err_mean": 0.0405, "expression_change_cos": 0.031,
    }  # fmt: skip
    md = render_report_md(load_results(write_report(tmp_path, r)[0]))
    assert "| ipd | 23.25 | 21.50 | 0.8123 | 0.9000 | 0.0412 (0.0405) | 0.031 | 10 |" in md
    assert "Background hue error (mean-hue floor)" in md
    assert "Expression change RMS" not in md  # older results without the sizes


def test_fidelity_table_and_answer_give_the_size_of_the_expression_change(tmp_path):
    r = _results()
    r["methods"]["ipd"]["reconstruction"] |= {
        "bg_chroma_err": 0.0412, "bg_chroma_err_mean": 0.0405, "expression_change_cos": 0.031,
        "rmse": 0.096, "expression_rms": 0.032, "decode_change_rms": 0.0051,
        "decode_change_off_expression": 0.892, "decode_change_neutral_cos": 0.273,
    }  # fmt: skip
    md = render_report_md(load_results(write_report(tmp_path, r)[0]))
    # drawn / true (error), in that order: a swap would print 0.0320 / 0.0051.
    assert "| 0.031 | 0.0051 / 0.0320 (0.0960) | 89.20 / 0.273 | 10 |" in md
    assert "89 % of the decodes' difference lies in pixels the expression leaves" in md
    assert "the decodes differ by RMS 0.0051 where the true change is 0.0320" in md
    assert "error (0.0960) is 3.0 times the whole expression change" in md
    assert "draws 12 %" not in md  # older results without the gains


def test_answer_gives_the_gain_and_the_models_response_to_the_expression(tmp_path):
    r = _results()
    r["methods"]["ipd"]["reconstruction"] |= {
        "expression_change_cos": 0.031, "expression_gain": 0.118,
        "expression_response_cos": 0.183, "expression_response_gain": 0.071,
    }  # fmt: skip
    md = render_report_md(load_results(write_report(tmp_path, r)[0]))
    # gain of the decodes' difference, then the response (a swap would print 7 % ... 12 %).
    assert (
        "cosine 0.031 (1: it draws the expression; 0: unrelated or no change) and draws 12 %" in md
    )
    assert "x̂_{i-p-e} changes by 7 % of the expression (cosine 0.183)" in md


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


def test_report_answers_the_papers_questions_with_hand_computed_margins():
    from facefactors.evaluation.answers import margin_se

    # p = 1.0 on 10 faces is kept at 0.95: SE = sqrt((0.95*0.05 + 0.8*0.2) / 10) = 0.14405.
    assert margin_se(1.0, 0.8, 10) == pytest.approx(0.144049, abs=1e-6)
    assert margin_se(0.7, 0.6, 100) == pytest.approx(np.sqrt((0.21 + 0.24) / 100))
    md = render_report_md(_results())
    assert md.index("## The paper's questions") < md.index("## Overall accuracy")
    # Best runs: ipd 10/10, baseline 8/10; means 0.95 and 0.70.
    assert (
        "- **ipd** 100.00 % vs baseline 80.00 %: +20.00 pp (2 SE = 28.81 pp on 10 faces): "
        "no clear difference (within 2 SE). Mean over seeds: +25.00 pp." in md
    )
    # Report seeds: baseline seed 1 misses the two |yaw| > 40° faces, ipd seed 1 none.
    assert "|yaw|>40° +100.00 pp (n=2)" in md
    # Growth 100 - 20 = 80 pp against 2 SE = 2*sqrt(2*0.25*0.75/2) = 86.60 pp at n = 2.
    assert "changes by +80.00 pp (2 SE at n=2: 86.60 pp): it does not clearly change." in md
    assert "identity-embedding cosine 0.900, PSNR 21.5 dB, SSIM 0.812 (10 faces)." in md


def test_a_clear_margin_is_called_better_or_worse():
    from facefactors.evaluation.answers import answer_lines

    r = _results()
    for m, acc in (("baseline", 0.60), ("ipd", 0.70)):
        r["methods"][m]["accuracy"].update(best=acc, mean=acc)
        r["methods"][m]["pose_subsets"]["all"] = {"n": 1000, "acc": acc}
    text = "\n".join(answer_lines(r, "baseline"))
    assert "+10.00 pp (2 SE = 4.24 pp on 1000 faces): better." in text
    assert answer_lines(r, None) == []  # no baseline, no comparison


def test_fidelity_table_and_answer_give_the_side_test(tmp_path):
    r = _results()
    r["methods"]["ipd"]["neutral_fidelity"]["side"] = {
        "psnr": 20.65, "psnr_mirrored": 13.77, "correct_side": 0.982, "n": 224, "min_abs_yaw": 20.0,
    }  # fmt: skip
    md = render_report_md(load_results(write_report(tmp_path, r)[0]))
    # true / mirrored, in that order: a swap would print 13.77 / 20.65.
    assert "| 20.65 / 13.77 (98.20) | 10 |" in md
    assert "Side test, on faces turned by at least 20°" in md
    assert (
        "it scores 20.6 dB against the true neutral and 13.8 dB against its mirror image, "
        "and is closer to the true one for 98 % of 224 faces" in md
    )
