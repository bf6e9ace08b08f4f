"""Real data as users bring it: a flat folder of numbered class folders, the person in each
file name, prepared, folded by subject and cross-validated by one `reproduce --folds` command.

The faces are rendered synthetic faces written as plain PNGs (`export_folder`), 6 people ×
6 faces at 32 px; `prepare --no-detect` only resizes them, so no detector weights are needed.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from facefactors.data.labels import BASIC7
from facefactors.data.prepared import load_prepared
from facefactors.data.subjects import assign_subject_folds
from facefactors.errors import ConfigError, DataError
from facefactors.ipd.splits import split_index
from prepare_helpers import no_weights, read_csv, run_prepare  # noqa: F401 (fixture by name)
from test_reproduce import TINY, make_prepared_rafdb, run_cli

SUBJECT_REGEX = r"^(S\d+)_"


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    from facefactors.synth.export import export_folder

    root = tmp_path_factory.mktemp("flat") / "faces"
    export_folder(root, identities=6, per_identity=6, size=32, progress=False)
    return root


@pytest.fixture(scope="module")
def prepared(flat, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")  # no MTCNN weights there: pose stays unknown
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEFACTORS_HOME", str(home))
        out = flat.parent / "prep"
        argv = ["folder", str(flat), "--out", str(out), "--no-detect", "--size", "32"]
        code, printed = run_prepare([*argv, "--format", "png", "--subject-regex", SUBJECT_REGEX])
    assert code == 0 and "prepared 36" in printed
    return out


def test_flat_numbered_folder_prepares_with_subjects(flat, prepared):
    assert sorted(p.name for p in flat.iterdir())[:2] == ["1 - Neutral", "2 - Happy"]
    rows = read_csv(prepared / "annotations.csv")
    assert len(rows) == 36 and {r["split"] for r in rows} == {"all"}
    for r in rows:  # the subject is the file name's prefix; the split is not repeated
        name = Path(r["path"]).name
        assert r["subject"] == name.split("_")[0]
        assert r["path"].startswith("images/all/") and "/all/all/" not in r["path"]
        assert Path(r["path"]).parent.name.split(" - ")[1].lower() in ("sad", r["label"])
    index = load_prepared(prepared)
    assert index.name == "folder" and index.classes == BASIC7
    assert index.subjects == tuple(f"S{i:03d}" for i in range(6))


def test_folds_by_subject_are_disjoint_and_deterministic(prepared):
    index = load_prepared(prepared)
    folded = assign_subject_folds(index, 3)
    fold_of: dict[str, set[int]] = {}
    for s in folded.samples:
        fold_of.setdefault(s.subject, set()).add(s.fold)
    assert all(len(f) == 1 for f in fold_of.values())  # no subject in two folds
    assert sorted(sum(f == {k} for f in fold_of.values()) for k in range(3)) == [2, 2, 2]
    shuffled = index.with_samples(random.Random(1).sample(index.samples, len(index.samples)))
    again = {s.subject: s.fold for s in assign_subject_folds(shuffled, 3).samples}
    assert again == {s.subject: s.fold for s in folded.samples}  # order does not matter
    for k in range(3):
        sets = split_index(index, k, val_every=2, folds=3)
        people = {
            n: {s.subject for s in getattr(sets, n).samples} for n in ("train", "val", "test")
        }
        assert people["test"] and people["val"] and sets.val_by == "subject"
        assert not people["test"] & (people["train"] | people["val"])
        assert not people["train"] & people["val"]
    with pytest.raises(ConfigError, match=r"data\.folds"):
        split_index(index, 0, val_every=0)


def test_reproduce_folds_cross_validates_by_person_in_one_command(prepared, tmp_path, capsys):
    out = tmp_path / "cv"
    argv = ["--config", "ipd_synth_quick", "--out", str(out), "--seeds", "0", "--folds", "3"]
    argv += ["--methods", "baseline", "ipd"]
    # Only data.root: the source is read from the prepared folder, not left at synth.
    argv += [a for s in [*TINY, f"data.root={prepared}"] for a in ("--set", s)]
    assert run_cli(argv) == 0
    printed = capsys.readouterr()
    assert "over 3 folds" in printed.out and "vs baseline" in printed.out
    assert "fewer than 250" in printed.err  # the short-budget warning
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["name"] == "folder" and results["dataset"]["source"] == "prepared"
    assert "3 folds by subject" in results["settings"]["fold_rule"]
    everyone = set(load_prepared(prepared).subjects)
    for method in ("baseline", "ipd"):
        entry = results["methods"][method]
        folds = entry["folds"]
        assert [f["fold"] for f in folds] == [0, 1, 2]
        tested = [set(f["test_subjects"]) for f in folds]
        assert set().union(*tested) == everyone and sum(map(len, tested)) == 6
        for f in folds:
            assert not set(f["test_subjects"]) & set(f["train_subjects"])
        assert entry["fold_summary"]["n"] == 3
        saved = (out / method / "fold0" / "seed0" / "config.yaml").read_text()
        assert "source: prepared" in saved and f"variant: {method}" in saved
    vs = results["methods"]["ipd"]["vs_baseline"]
    assert vs["identities"] == 6 and vs["n"] == 36
    notes = " ".join(results["notes"])
    assert "trained 2 optimiser steps" in notes and "stopped early by train.max_steps=2" in notes
    report = (out / "report.md").read_text()
    assert "## Cross-validation folds" in report and "## Paired differences" in report
    assert "No caveats recorded" not in report


def test_errors_come_before_any_training(prepared, tmp_path):
    from facefactors.experiments.reproduce import reproduce

    raf = make_prepared_rafdb(tmp_path)  # fixed train/test splits
    out = tmp_path / "runs"
    with pytest.raises(ConfigError, match=r"--folds 3 .* has fixed splits \(train, test\)"):
        reproduce("ipd_ckplus_paper", out, [0], 3, [*TINY, f"data.root={raf}"])
    import shutil

    nosubj = tmp_path / "nosubj"  # the same prepared folder with its subject ids dropped
    shutil.copytree(prepared, nosubj)
    rows = read_csv(nosubj / "annotations.csv")
    with open(nosubj / "annotations.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "subject": ""} for r in rows)
    with pytest.raises(DataError, match="has no subject id .*--subject-regex"):
        reproduce("ipd_ckplus_paper", out, [0], 2, [*TINY, f"data.root={nosubj}"])
    assert not out.exists()  # nothing trained


def test_paper_preset_on_prepared_folders(prepared, tmp_path):
    """ipd_ckplus_paper (data.fold: 0, 112 px) on a subject folder and on fixed splits."""
    from facefactors.experiments.reproduce import reproduce

    quiet = lambda _msg: None  # noqa: E731
    path = reproduce(
        "ipd_ckplus_paper", tmp_path / "a", [0], 2, [*TINY, f"data.root={prepared}"], quiet
    )
    entry = json.loads(path.read_text())["methods"]["id"]
    assert [f["fold"] for f in entry["folds"]] == [0, 1]
    raf = make_prepared_rafdb(tmp_path)
    path = reproduce(
        "ipd_ckplus_paper", tmp_path / "b", [0], None, [*TINY, f"data.root={raf}"], quiet
    )
    results = json.loads(path.read_text())
    assert results["dataset"]["num_test"] == 7 and "folds" not in results["methods"]["id"]


def test_evaluate_help_names_both_test_sets(capsys):
    from facefactors.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "real test split" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "without --data: synthetic test people" in text
