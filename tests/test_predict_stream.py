"""`facefactors predict` streams, resumes, checks --out first and lists every input's outcome.

Detection runs with the real MTCNN weights (the `mtcnn_weights_dir` fixture skips
with the reason when they cannot be fetched) and a tiny random expression model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facefactors.faces import samples
from facefactors.inference import outputs
from inference_helpers import run_cli, save_tiny_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"


def _half(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def _avi(path: Path, frames: list[np.ndarray]) -> Path:
    """An MJPG AVI (its header declares the frame count, so a cut file is seen)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module", autouse=True)
def _onednn_like_the_subprocess():
    """Inference only: use oneDNN as the killed `facefactors` subprocess does, so that the
    resumed in-process run writes the same bytes (conftest turns it off for training)."""
    import torch

    torch.backends.mkldnn.enabled = True
    yield
    torch.backends.mkldnn.enabled = False


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Ten photos (faces, mirrored faces, two blank ones) and an 8-frame video."""
    from facefactors.bench.video import moving_frames

    root = tmp_path_factory.mktemp("inputs")
    photos = root / "photos"
    photos.mkdir()
    gh, ast = _half(samples.grace_hopper()), _half(samples.astronaut())
    images = [gh, ast, gh[:, ::-1], ast[:, ::-1], np.full((120, 160, 3), 90, np.uint8)] * 2
    for k, im in enumerate(images):
        Image.fromarray(np.ascontiguousarray(im)).save(photos / f"{k:02d}.png")
    video = _avi(root / "clip.avi", moving_frames(8, (320, 240)))
    return {"photos": photos, "video": video, "root": root}


def _argv(inputs, ckpt, out, weights, *extra) -> list[str]:
    return [
        "predict",
        str(inputs["photos"]),
        str(inputs["video"]),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(out),
        "--weights",
        weights,
        "--batch",
        "2",
        "--detect-every",
        "3",
        *extra,
    ]


@pytest.fixture(scope="module")
def whole(inputs, ckpt, mtcnn_weights_dir, tmp_path_factory):
    """One uninterrupted run, the reference for every resume."""
    out = tmp_path_factory.mktemp("whole") / "results.csv"
    assert run_cli(_argv(inputs, ckpt, out, mtcnn_weights_dir)) == 0
    return out


def test_every_input_has_its_outcome(whole, inputs) -> None:
    meta = json.loads(whole.with_name("results.meta.json").read_text())
    outcome = {Path(e["file"]).name: e for e in meta["inputs"]}
    assert outcome["04.png"]["outcome"] == "no face" and outcome["04.png"]["faces"] == 0
    assert outcome["00.png"]["outcome"] == "faces" and outcome["00.png"]["faces"] == 1
    assert outcome["clip.avi"]["outcome"] == "faces" and outcome["clip.avi"]["frames"] == 8
    assert len(meta["inputs"]) == 11 and (meta["images"], meta["videos"]) == (10, 1)
    rows = whole.read_text().splitlines()
    assert len(rows) == 1 + 8 + 8  # header, 8 photo faces, 8 video frames


@pytest.mark.parametrize("commits", [2, 6, 7])
def test_interrupted_then_rerun_gives_the_same_rows(
    whole, inputs, ckpt, mtcnn_weights_dir, tmp_path, monkeypatch, commits
) -> None:
    """Interrupted after `commits` batches (2: among the photos; 6, 7: inside the video,
    whose tracker state must carry over), with a row and a journal line torn by the
    kill, then rerun: the rows are byte for byte those of the uninterrupted run."""
    out = tmp_path / "results.csv"
    real = outputs.PredictionSink.commit
    calls = {"n": 0}

    def commit(self, faces, lines):
        real(self, faces, lines)
        calls["n"] += 1
        if calls["n"] == commits:
            raise KeyboardInterrupt

    monkeypatch.setattr(outputs.PredictionSink, "commit", commit)
    assert run_cli(_argv(inputs, ckpt, out, mtcnn_weights_dir)) == 130
    monkeypatch.setattr(outputs.PredictionSink, "commit", real)
    with out.open("a") as f:  # a row of the next batch, cut off mid-write
        f.write("/x/y.png,,0,1.5,2")
    with out.with_name("results.inputs.jsonl").open("a") as f:
        f.write('{"kind": "input", "path": "/x')
    assert run_cli(_argv(inputs, ckpt, out, mtcnn_weights_dir)) == 0
    assert out.read_bytes() == whole.read_bytes()
    meta = json.loads(out.with_name("results.meta.json").read_text())
    ref = json.loads(whole.with_name("results.meta.json").read_text())
    assert meta["inputs"] == ref["inputs"]


def test_a_killed_process_resumes(whole, inputs, ckpt, mtcnn_weights_dir, tmp_path) -> None:
    """SIGKILL a real `facefactors predict` once a few batches are committed, then rerun."""
    out = tmp_path / "results.csv"
    journal = out.with_name("results.inputs.jsonl")
    code = "import sys; from facefactors import cli; sys.exit(cli.main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *_argv(inputs, ckpt, out, mtcnn_weights_dir)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and journal.read_text().count('"kind": "input"') >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert journal.read_text().count('"kind": "input"') < 11
    assert run_cli(_argv(inputs, ckpt, out, mtcnn_weights_dir)) == 0
    assert out.read_bytes() == whole.read_bytes()


def test_a_rerun_of_a_finished_output_adds_nothing(whole, inputs, ckpt, mtcnn_weights_dir, capsys):
    before = whole.read_bytes()
    assert run_cli(_argv(inputs, ckpt, whole, mtcnn_weights_dir)) == 0
    assert "11 inputs done by an earlier run" in capsys.readouterr().err
    assert whole.read_bytes() == before


def test_other_options_on_the_same_out_are_refused(whole, inputs, ckpt, mtcnn_weights_dir, capsys):
    before = whole.read_bytes()
    argv = _argv(inputs, ckpt, whole, mtcnn_weights_dir, "--min-face", "30")
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "was written with other settings: min_face_size (20.0 there" in err
    )
    assert whole.read_bytes() == before


def test_jsonl_streams_one_record_per_face(whole, inputs, ckpt, mtcnn_weights_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    assert run_cli(_argv(inputs, ckpt, out, mtcnn_weights_dir)) == 0
    records = [json.loads(ln) for ln in out.read_text().splitlines()]
    import pandas as pd

    table = pd.read_csv(whole)
    assert [r["file"] for r in records] == table["file"].tolist()
    np.testing.assert_allclose([r["score"] for r in records], table["score"], rtol=1e-5)


def test_truncated_video_says_where_it_ended(inputs, ckpt, mtcnn_weights_dir, tmp_path, capsys):
    from facefactors.bench.video import moving_frames

    full = _avi(tmp_path / "full.avi", moving_frames(10, (160, 120)))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "r.csv"
    argv = ["predict", str(cut), "--checkpoint", str(ckpt), "--out", str(out)]
    assert run_cli([*argv, "--weights", mtcnn_weights_dir]) == 0
    err = capsys.readouterr().err
    assert f"video {cut} ended at frame 5 of the 10 it declares" in err
    entry = json.loads(out.with_name("r.meta.json").read_text())["inputs"][0]
    assert entry["outcome"] == "video ended early" and entry["reason"] == "ended at frame 5 of 10"
    assert entry["frames"] == 5


def test_unreadable_subfolder_is_listed(inputs, ckpt, mtcnn_weights_dir, tmp_path, monkeypatch):
    """A subfolder that cannot be listed (simulated: tests may run as root) is an outcome."""
    from facefactors.inference import io as inference_io

    root = tmp_path / "photos"
    (root / "locked").mkdir(parents=True)
    Image.fromarray(_half(samples.grace_hopper())).save(root / "gh.jpg")
    real = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(inference_io.os, "scandir", scandir)
    out = tmp_path / "r.csv"
    argv = ["predict", str(root), "--checkpoint", str(ckpt), "--out", str(out)]
    assert run_cli([*argv, "--weights", mtcnn_weights_dir]) == 0
    meta = json.loads(out.with_name("r.meta.json").read_text())
    locked = [e for e in meta["inputs"] if e["outcome"] == "unreadable folder"]
    assert locked == [
        {
            "path": str((root / "locked").resolve()),
            "file": str(root / "locked"),
            "type": "folder",
            "outcome": "unreadable folder",
            "reason": "Permission denied",
        }
    ]
    # The input folder itself unreadable: said as such, not "No files found".
    assert run_cli([*argv[:1], str(root / "locked"), *argv[2:]]) == 2


def test_unreadable_input_folder_is_not_no_files(ckpt, tmp_path, monkeypatch, capsys) -> None:
    from facefactors.inference import io as inference_io

    locked = tmp_path / "locked"
    locked.mkdir()

    def scandir(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(inference_io.os, "scandir", scandir)
    argv = ["predict", str(locked), "--checkpoint", str(ckpt), "--out", str(tmp_path / "r.csv")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert f"these folders could not be read: {locked} (Permission denied)" in err
    assert "No files found" not in err


def test_no_readable_input_exits_1(ckpt, tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("not an image\n")
    out = tmp_path / "r.csv"
    argv = ["predict", str(tmp_path / "notes.txt"), "--checkpoint", str(ckpt), "--out", str(out)]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "skipped 1 unreadable input" in err and "no input could be read" in err


@pytest.mark.parametrize("case", ["folder", "under-a-file"])
def test_out_is_checked_before_any_work(tmp_path, capsys, case) -> None:
    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    if case == "folder":
        out = tmp_path / "results.csv"
        out.mkdir()
        message = f"Option --out {out}: {out} is a folder, not a file."
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "results.csv"
        message = f"Option --out {out} cannot be written: {out.parent} is not a folder"
    # The checkpoint does not even exist: --out is refused first, before any loading.
    argv = ["predict", str(photo), "--checkpoint", str(tmp_path / "none.pt"), "--out", str(out)]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_two_runs_on_one_out_are_refused(tmp_path) -> None:
    files = outputs.check_output(tmp_path / "r.csv")
    header = {"classes": ["a"], "columns": ["file"]}
    with outputs.PredictionSink(files, header), pytest.raises(Exception, match="another"):
        with outputs.PredictionSink(files, header):
            pass
