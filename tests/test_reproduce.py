"""`facefactors reproduce` end to end on tiny fake RAF-DB (prepared) and CK+ trees.

The paper presets are shrunk with --set (width 4, 32 px, 2 steps) so every run
trains in about a second; what is checked is the protocol: which images each run
is tested on, how seeds and folds are summarised, and that reruns resume.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facefactors.data.labels import BASIC7, CKPLUS7
from facefactors.data.prepared import MANIFEST, MANIFEST_FORMAT
from facefactors.data.writers import write_ckplus_sequence, write_rafdb
from facefactors.errors import ConfigError
from facefactors.evaluation.metrics import accuracy
from facefactors.prepare.outputs import ANNOTATION_COLUMNS, csv_text

TINY = [
    "model.width=4",
    "model.decoder_channels=4",
    "data.size=32",
    "train.epochs=1",
    "train.max_steps=2",
    "train.batch_size=4",
    "train.threads=1",
    "train.device=cpu",
    "train.sample_every=0",
    "train.log_every=1",
]
# Test images' yaw: known for the first four (one beyond 20°), unknown for the rest.
TEST_YAW = [5.0, -15.0, 25.0, 12.0, None, None, None]


def _face(rng: np.random.Generator, shade: int) -> np.ndarray:
    return np.clip(rng.normal(shade, 30, (32, 32, 3)), 0, 255).astype(np.uint8)


def make_prepared_rafdb(tmp: Path) -> Path:
    """A RAF-DB tree (14 train, 7 test) and a prepared folder over it with partial pose."""
    rng = np.random.default_rng(0)
    raw = tmp / "rafdb"
    entries = [(f"train_{i:05d}.jpg", BASIC7[i % 7], _face(rng, 30 * (i % 7))) for i in range(14)]
    entries += [(f"test_{i:04d}.jpg", BASIC7[i], _face(rng, 30 * i)) for i in range(7)]
    write_rafdb(raw, entries)
    rows = []
    for i, (name, cls, _) in enumerate(entries):
        split = "train" if name.startswith("train") else "test"
        # Training pose: known for even images, unknown (-1) for odd ones (gap 1).
        yaw = (10.0 * (i % 5) if i % 2 == 0 else None) if split == "train" else TEST_YAW[i - 14]
        bin_ = -1 if yaw is None else min(int(abs(yaw) // 10), 4)
        path = raw / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")
        yaw_text = "" if yaw is None else f"{yaw:.3f}"
        rows.append([str(path), cls, split, "", "", yaw_text, "", "", str(bin_), ""])
    prep = tmp / "prepared"
    prep.mkdir()
    (prep / "annotations.csv").write_text(csv_text(ANNOTATION_COLUMNS, rows))
    manifest = {
        "format": MANIFEST_FORMAT, "version": 1, "dataset": "rafdb", "classes": list(BASIC7),
        "extra_neutral": False, "folds": None, "size": 32, "detect": False,
    }  # fmt: skip
    (prep / MANIFEST).write_text(json.dumps(manifest))
    return prep


def make_ckplus(tmp: Path) -> Path:
    """CK+ with 10 subjects (one per fold), one 4-frame sequence each: 1 neutral + 3 peak."""
    rng = np.random.default_rng(1)
    root = tmp / "ck"
    for i in range(10):
        frames = [_face(rng, 40 + 20 * j)[:, :, 0] for j in range(4)]
        write_ckplus_sequence(root, f"S{100 + i:03d}", "001", frames, CKPLUS7[i % 7])
    return root


def run_cli(argv: list[str]) -> int:
    """Parse and run the reproduce command as the CLI would."""
    from facefactors.commands import reproduce

    parser = argparse.ArgumentParser()
    reproduce.register(parser.add_subparsers())
    args = parser.parse_args(["reproduce", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def rafdb_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("repro_rafdb")
    prep = make_prepared_rafdb(tmp)
    out = tmp / "out"
    argv = ["--config", "ipd_rafdb_paper", "--out", str(out), "--seeds", "0", "1"]
    argv += [a for s in [*TINY, f"data.root={prep}"] for a in ("--set", s)]
    assert run_cli(argv) == 0
    return out, prep


def test_rafdb_results_per_seed(rafdb_run):
    out, _ = rafdb_run
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["name"] == "rafdb"
    assert results["dataset"]["classes"] == list(BASIC7)
    assert results["dataset"]["num_test"] == 7
    entry = results["methods"]["ipd"]
    assert entry["seeds"] == [0, 1]
    accs = []
    for seed in (0, 1):
        rec = json.loads((out / f"seed{seed}" / "test_predictions.json").read_text())
        assert rec["true"] == list(range(7))  # the 7 test images, one per class, in order
        accs.append(accuracy(rec["pred"], rec["true"]))
    summary = entry["accuracy"]
    assert summary["per_seed"] == pytest.approx(accs)
    assert summary["best"] == pytest.approx(max(accs))
    assert summary["mean"] == pytest.approx(np.mean(accs))
    assert summary["std"] == pytest.approx(np.std(accs, ddof=1))
    assert np.asarray(entry["confusion"]).sum() == 7
    # Pose subsets over the 4 test images with a known yaw (5, 15, 25, 12 in |yaw|).
    assert entry["pose_subsets"]["all"]["n"] == 4
    assert entry["pose_subsets"][">10"]["n"] == 3
    assert entry["pose_subsets"][">20"]["n"] == 1
    assert any("4 of 7" in note for note in results["notes"])
    # Half the training images have no pose: L_pose stayed finite on them.
    logged = [json.loads(ln) for ln in (out / "seed0" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss/c/pose"]) for r in logged if "loss/c/pose" in r)
    assert any("loss/c/pose" in r for r in logged)
    assert (out / "report.md").is_file()


def test_rafdb_rerun_skips_finished_runs(rafdb_run, capsys):
    out, prep = rafdb_run
    before = (out / "results.json").read_text()
    stamp = (out / "seed0" / "model.pt").stat().st_mtime_ns
    argv = ["--config", "ipd_rafdb_paper", "--out", str(out), "--seeds", "0", "1"]
    argv += [a for s in [*TINY, f"data.root={prep}"] for a in ("--set", s)]
    assert run_cli(argv) == 0
    assert capsys.readouterr().out.count("skipped") == 2
    assert (out / "seed0" / "model.pt").stat().st_mtime_ns == stamp
    assert (out / "results.json").read_text() == before


def test_folds_refused_for_a_dataset_with_a_test_split(rafdb_run, tmp_path):
    _, prep = rafdb_run
    from facefactors.experiments.reproduce import reproduce

    with pytest.raises(ConfigError, match="--folds"):
        reproduce("ipd_rafdb_paper", tmp_path, [0], 2, [*TINY, f"data.root={prep}"])


def test_init_checkpoint_copies_a_finished_run(rafdb_run):
    from facefactors.config import load_config
    from facefactors.ipd.config import IPDConfig
    from facefactors.ipd.model import build_model
    from facefactors.ipd.train import read_checkpoint as read_training_state
    from facefactors.ipd.warmstart import load_init_checkpoint

    out, _ = rafdb_run
    ckpt = out / "seed0" / "checkpoints" / "last.pt"
    cfg = load_config(IPDConfig, "ipd_sfew_paper", TINY)
    cfg.model.classes = list(BASIC7)
    model = build_model(cfg)
    assert sorted(load_init_checkpoint(model, ckpt)) == [
        "c_exp",
        "c_p",
        "d",
        "dec",
        "e_exp",
        "e_id",
        "e_pose",
    ]
    saved = read_training_state(ckpt)["model"]
    assert torch.equal(model.state_dict()["e_exp.conv1.weight"], saved["e_exp.conv1.weight"])
    cfg.model.classes = list(CKPLUS7)  # another class set: refused
    with pytest.raises(ConfigError, match="model.init_checkpoint"):
        load_init_checkpoint(build_model(cfg), ckpt)


def test_ckplus_folds_without_subject_leakage(tmp_path):
    from facefactors.data.registry import load_dataset
    from facefactors.experiments.reproduce import reproduce

    root = make_ckplus(tmp_path)
    out = tmp_path / "out"
    overrides = [*TINY, "data.source=ckplus7", f"data.root={root}"]
    path = reproduce("ipd_ckplus_paper", out, [0], 2, overrides, log=lambda _: None)
    results = json.loads(path.read_text())
    entry = results["methods"]["id"]  # the preset's no-pose mode
    assert results["dataset"]["classes"] == list(CKPLUS7)
    fold_of = {s.subject: s.fold for s in load_dataset("ckplus7", root).samples}
    folds = entry["folds"]
    assert [f["fold"] for f in folds] == [0, 1]
    for f in folds:
        assert f["n_test"] == 3  # the 3 peak frames; the neutral first frame is no class
        assert f["test_subjects"] == [s for s, k in fold_of.items() if k == f["fold"]]
        assert not set(f["test_subjects"]) & set(f["train_subjects"])
        assert len(f["train_subjects"]) == 9
    per_fold = [f["accuracy"]["per_seed"][0] for f in folds]
    assert entry["accuracy"]["per_seed"] == pytest.approx([np.mean(per_fold)])
    assert sum(map(sum, entry["confusion"])) == 6


def test_unknown_pose_batch_gives_zero_pose_loss():
    from facefactors.ipd.config import LossConfig
    from facefactors.ipd.losses import classifier_losses

    pose_logits = torch.randn(3, 5, requires_grad=True)
    total, logs = classifier_losses(
        torch.zeros(3, 7), torch.tensor([0, 1, 7]), LossConfig(), pose_logits, torch.full((3,), -1)
    )
    assert float(logs["loss/c/pose"]) == 0.0
    # L_exp leaves out the label 7 (CK+'s extra neutral): mean of two log 7 terms.
    assert float(logs["loss/c/exp"]) == pytest.approx(np.log(7))
    total.backward()
    assert torch.isfinite(pose_logits.grad).all()


def test_ckplus_splits_hold_out_validation_subjects(tmp_path):
    from facefactors.data.registry import load_dataset
    from facefactors.ipd.splits import split_index

    index = load_dataset("ckplus7", make_ckplus(tmp_path))
    sets = split_index(index, fold=3, val_every=3)
    subjects = {
        name: {s.subject for s in getattr(sets, name).samples} for name in ("train", "val", "test")
    }
    assert len(subjects["test"]) == 1 and len(subjects["val"]) == 3 and len(subjects["train"]) == 6
    assert not subjects["train"] & subjects["val"] and not subjects["train"] & subjects["test"]
    # The neutral first frames (label 7 = len(classes)) stay in training for D and L_recon.
    assert sum(s.label == 7 for s in sets.train.samples) == 6
    with pytest.raises(ConfigError, match="data.fold"):
        split_index(index, fold=None, val_every=0)


def test_evaluate_command_on_a_prepared_folder(rafdb_run, tmp_path):
    """`facefactors evaluate --data` scores finished runs on the real test split."""
    from facefactors.cli import main

    out, prep = rafdb_run
    argv = ["evaluate", "--out", str(tmp_path / "ev"), "--data", str(prep)]
    argv += ["--run", f"ipd={out / 'seed0'}", "--run", f"ipd={out / 'seed1'}"]
    assert main(argv) == 0
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    # One title for one dataset: reproduce and evaluate both name it as loaded.
    assert results["dataset"]["name"] == "rafdb" and results["dataset"]["source"] == "prepared"
    assert (tmp_path / "ev" / "report.md").read_text().startswith("# Results: rafdb\n")
    assert (out / "report.md").read_text().startswith("# Results: rafdb\n")
    assert any("trained 2 optimiser steps" in n for n in results["notes"])
    entry = results["methods"]["ipd"]
    assert entry["seeds"] == [0, 1]
    for i, seed in enumerate((0, 1)):  # same predictions as the reproduce driver made
        rec = json.loads((out / f"seed{seed}" / "test_predictions.json").read_text())
        assert entry["accuracy"]["per_seed"][i] == pytest.approx(accuracy(rec["pred"], rec["true"]))
    assert entry["pose_subsets"]["all"]["n"] == 4
    assert (tmp_path / "ev" / "report.md").is_file()
    # A run folder without a checkpoint is one clear error, exit 2.
    assert main(["evaluate", "--out", str(tmp_path / "x"), "--run", f"ipd={tmp_path}"]) == 2
