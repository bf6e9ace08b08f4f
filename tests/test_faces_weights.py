"""Weight lookup, verification and the `facefactors weights` command, without network."""

from __future__ import annotations

import argparse
import zipfile

import pytest

from facefactors.commands import weights as weights_cmd
from facefactors.errors import FaceFactorsError
from facefactors.faces import weights as W


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="facefactors")
    weights_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cache_folder_follows_facefactors_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "home"))
    assert W.mtcnn_weights_dir() == tmp_path / "home" / "weights" / "mtcnn"
    assert W.mtcnn_weights_dir(tmp_path / "mine") == tmp_path / "mine"
    assert _run_cli(["weights", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "home" / "weights" / "mtcnn")


def test_default_home_is_user_cache(monkeypatch):
    monkeypatch.delenv("FACEFACTORS_HOME", raising=False)
    assert str(W.facefactors_home()).endswith(".cache/facefactors")


def test_missing_weights_message_names_fetch_command_and_option(tmp_path):
    with pytest.raises(FaceFactorsError) as info:
        W.require_mtcnn_weights(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "pnet.pt") in msg
    assert "facefactors weights fetch mtcnn" in msg and "--weights DIR" in msg
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence


def test_mtcnn_constructor_reports_missing_weights_without_downloading(tmp_path, monkeypatch):
    import subprocess

    from facefactors.faces.mtcnn import MTCNN

    def no_pip(*_a, **_k):
        raise AssertionError("MTCNN() must never start a download")

    monkeypatch.setattr(subprocess, "run", no_pip)
    monkeypatch.setenv("FACEFACTORS_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(FaceFactorsError, match="facefactors weights fetch mtcnn"):
        MTCNN()
    with pytest.raises(FaceFactorsError, match="facefactors weights fetch mtcnn"):
        MTCNN(weights_dir=tmp_path)


def test_wrong_files_are_rejected(tmp_path):
    for spec in W.MTCNN_FILES:
        (tmp_path / spec.name).write_bytes(b"x" * spec.size)  # right size, wrong bytes
    status = {name: s for name, _p, s in W.weights_status(tmp_path)}
    assert status == {
        "pnet.pt": "wrong sha256",
        "rnet.pt": "wrong sha256",
        "onet.pt": "wrong sha256",
    }
    (tmp_path / "pnet.pt").write_bytes(b"short")
    assert W.weights_status(tmp_path)[0][2] == "wrong size"
    with pytest.raises(FaceFactorsError, match="pnet.pt has the wrong size"):
        W.require_mtcnn_weights(tmp_path)


def test_list_command_exit_status(tmp_path, capsys):
    assert _run_cli(["weights", "list", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("missing") == 3 and "onet.pt" in out


def test_extract_rejects_tampered_or_incomplete_wheel(tmp_path):
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as zf:
        for spec in W.MTCNN_FILES:
            zf.writestr(f"facenet_pytorch/data/{spec.name}", b"not the weights")
    with pytest.raises(FaceFactorsError, match="SHA-256"):
        W.extract_mtcnn_from_wheel(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "pnet.pt").exists()  # nothing unverified is written

    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("facenet_pytorch/__init__.py", "")
    with pytest.raises(FaceFactorsError, match="has no facenet_pytorch/data/pnet.pt"):
        W.extract_mtcnn_from_wheel(empty, tmp_path / "out")

    notzip = tmp_path / "notzip.whl"
    notzip.write_text("hello")
    with pytest.raises(FaceFactorsError, match="could not be opened as a zip"):
        W.extract_mtcnn_from_wheel(notzip, tmp_path / "out")


def test_pip_failure_is_one_clear_sentence(tmp_path, monkeypatch):
    import subprocess

    def failing_pip(cmd, **_k):
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(FaceFactorsError) as info:
        W.fetch_mtcnn(tmp_path / "w")
    msg = str(info.value)
    assert "No matching distribution found" in msg and "--wheel FILE" in msg
    assert not (tmp_path / "w").exists()
