"""Validation by person, step budgets, the neutral-reference warning and old prepared paths."""

from __future__ import annotations

import json

from facefactors.data.records import DatasetIndex, Sample
from facefactors.ipd.data import DataBundle, LabelledView
from facefactors.ipd.splits import split_index
from facefactors.ipd.train import train
from facefactors.training.budget import stretch_epochs, training_caveat, training_facts
from ipd_helpers import one_thread, random_bundle, tiny_config  # noqa: F401 - autouse fixture
from prepare_helpers import blank_image, no_weights, read_csv, run_prepare  # noqa: F401


def _fixed(subjects: bool) -> DatasetIndex:
    train = [
        Sample(f"t{i}.png", i % 2, "train", f"P{i // 3}" if subjects else None) for i in range(12)
    ]
    return DatasetIndex("x", ("happy", "sad"), [*train, Sample("u.png", 0, "test", "Q")], "/x")


def test_validation_holds_out_whole_people_when_subjects_are_known():
    sets = split_index(_fixed(True), None, val_every=2)  # people P0..P3: P1 and P3 held out
    assert sets.val_by == "subject" and not sets.notes
    assert {s.subject for s in sets.val.samples} == {"P1", "P3"}
    assert not {s.subject for s in sets.val.samples} & {s.subject for s in sets.train.samples}
    blind = split_index(_fixed(False), None, val_every=2)
    assert blind.val_by == "image" and len(blind.val.samples) == 6
    assert "validation shares people with training" in blind.notes[0]


def test_min_steps_stretches_epochs_and_the_lr_schedule():
    assert stretch_epochs(5, 4, 5, 250) == (50, 40)  # 171 images at batch 32: 5 steps/epoch
    assert stretch_epochs(5, 4, 54, 250) == (5, 4)  # the synthetic quick set: 270 steps
    assert stretch_epochs(5, 4, 5, None) == (5, 4)


def test_a_run_trains_min_steps_and_says_so(tmp_path, capsys):
    from facefactors.config import read_yaml

    cfg = tiny_config("baseline", epochs=1, min_steps=7)
    result = train(cfg, tmp_path / "run", data=random_bundle(12))  # 3 steps per epoch
    assert (result.step, result.epoch) == (9, 3)  # ceil(7 / 3) = 3 epochs
    saved = read_yaml(tmp_path / "run" / "config.yaml")["train"]
    assert saved["epochs"] == 3 and saved["lr_step_epochs"] == 30
    err = capsys.readouterr().err
    assert "raises train.epochs from 1 to 3" in err and "trains 9 optimiser steps" in err
    facts = training_facts(result.step, result.epoch, saved)
    assert not facts["stopped_by_max_steps"]
    assert training_caveat("baseline", [facts]).startswith("baseline: each of 1 run(s) trained 9")
    capped = training_facts(2, 0, saved | {"max_steps": 2})
    assert "stopped early by train.max_steps=2" in training_caveat("id", [capped])


def test_warning_when_the_classes_need_neutral_images_the_data_lacks(tmp_path, capsys):
    bundle = random_bundle(8)
    items = [dict(it, expression=it["expression"] % 3) for it in bundle.train.base]
    no_neutral = DataBundle(
        LabelledView(items, range(8)), LabelledView(items, range(4)), ["happy", "sad", "anger"],
        neutral_images=0,
    )  # fmt: skip
    train(tiny_config("id", epochs=1, max_steps=1), tmp_path / "a", data=no_neutral)
    assert "need neutral images (label 3, D's extra output" in capsys.readouterr().err
    train(tiny_config("baseline", epochs=1, max_steps=1), tmp_path / "b", data=no_neutral)
    assert "need neutral images" not in capsys.readouterr().err  # no decoder, no D


def test_old_prepared_paths_still_load_and_resume(tmp_path, no_weights, capsys):
    from facefactors.data.prepared import load_prepared
    from facefactors.data.writers import write_image

    for split in ("train", "test"):
        write_image(tmp_path / "raw" / split / "happy" / "a.png", blank_image(40, 40))
    out = tmp_path / "out"
    argv = ["folder", str(tmp_path / "raw"), "--out", str(out), "--no-detect", "--size", "32"]
    run_prepare(argv)
    assert sorted(r["path"] for r in read_csv(out / "annotations.csv")) == [
        "images/test/happy/a.jpg",
        "images/train/happy/a.jpg",
    ]
    # Rewrite the folder as older versions left it: the split repeated in every path.
    log = out / "progress.jsonl"
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    for rec in lines[1:]:
        old = rec["path"].replace("images/train/", "images/train/train/")
        old = old.replace("images/test/", "images/test/test/")
        (out / old).parent.mkdir(parents=True, exist_ok=True)
        (out / rec["path"]).rename(out / old)
        rec["path"] = old
    log.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    capsys.readouterr()
    run_prepare(argv)  # a rerun keeps those images instead of redoing them
    assert "2 already done, 0 to process" in capsys.readouterr().err
    index = load_prepared(out)
    assert sorted(s.path.split("/out/")[1] for s in index.samples) == [
        "images/test/test/happy/a.jpg",
        "images/train/train/happy/a.jpg",
    ]
    assert not (out / "images/train/happy/a.jpg").exists()
