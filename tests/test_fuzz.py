"""Fuzzing: random and mutated label files, CSVs, --set overrides and checkpoints.

Every parser a user's file reaches must either load it or raise the project's own
:class:`~facefactors.errors.FaceFactorsError` with a message; any other exception
(``KeyError``, ``UnicodeDecodeError``, ``IndexError``, torch's ``RuntimeError`` ...)
fails the test. Each target runs twice: a small default (seconds) and a ``slow``
variant with many more examples (``pytest -m slow tests/test_fuzz.py``; set
``FACEFACTORS_FUZZ_EXAMPLES`` for more).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facefactors.errors import FaceFactorsError

# The slow variant: 400 examples per target, or FACEFACTORS_FUZZ_EXAMPLES.
FAST, SLOW = 12, int(os.environ.get("FACEFACTORS_FUZZ_EXAMPLES", "400"))


def fuzz(*strategies: st.SearchStrategy) -> Callable[[Callable], tuple[Callable, Callable]]:
    """The default test and its ``slow`` twin for one fuzz body."""

    def make(body: Callable) -> tuple[Callable, Callable]:
        def run(n: int) -> Callable:
            opts = settings(
                max_examples=n,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            return opts(given(*strategies)(body))

        return run(FAST), pytest.mark.slow(run(SLOW))

    return make


def loads_or_says_why(call: Callable[[], Any]) -> None:
    """Run ``call``; only a FaceFactorsError with a one-line message may come out."""
    try:
        call()
    except FaceFactorsError as exc:
        msg = str(exc)
        assert msg.strip() and "Traceback" not in msg, repr(msg)


# ---------------------------------------------------------------- mutations

_edit = st.tuples(
    st.integers(0, 10**6), st.integers(0, 6), st.binary(max_size=8), st.integers(0, 4)
)


def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` after a few random edits (cut, insert, overwrite, truncate, duplicate),
    in another encoding, or random bytes altogether."""

    def apply(edits: list[tuple[int, int, bytes, int]]) -> bytes:
        data = bytearray(valid)
        for pos, length, blob, op in edits:
            i = pos % (len(data) + 1)
            if op == 0:
                del data[i : i + length]
            elif op == 1:
                data[i:i] = blob
            elif op == 2:
                data[i : i + len(blob)] = blob
            elif op == 3:
                del data[i:]
            else:
                data[i:i] = data[i : i + 10 * length]
        return bytes(data)

    text = valid.decode("utf-8")
    encoded = st.sampled_from(["latin-1", "utf-16", "utf-16-le", "utf-8-sig", "cp1252"]).map(
        lambda enc: text.replace("e", "é").encode(enc, errors="replace")
    )
    return st.one_of(st.lists(_edit, min_size=1, max_size=4).map(apply), encoded, st.binary())


_SCRATCH = tempfile.TemporaryDirectory(prefix="ff-fuzz-")  # removed when the run ends


def _tmp() -> Path:
    """A fresh folder for one example."""
    return Path(tempfile.mkdtemp(dir=_SCRATCH.name))


def _image(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(path)


# ---------------------------------------------------------------- dataset loaders

RAFDB = b"train_00001.jpg 4\ntrain_00002.jpg 7\ntest_0001.jpg 1\n"


@fuzz(mutated(RAFDB))
def _rafdb(data: bytes) -> None:
    from facefactors.data.rafdb import load_rafdb

    root = _tmp()
    (root / "EmoLabel").mkdir()
    (root / "EmoLabel" / "list_patition_label.txt").write_bytes(data)
    loads_or_says_why(lambda: load_rafdb(root, check_files=False))


test_fuzz_rafdb, test_fuzz_rafdb_slow = _rafdb

AFFECT_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
    "expression,valence,arousal\n"
)
AFFECT = (AFFECT_HEADER + '1/a.jpg,11,12,33,34,"10.5;20;30;40",1,0.25,-0.5\n'
          '2/b.jpg,1,2,3,4,"1;2",7,0,0\n').encode()  # fmt: skip


@fuzz(mutated(AFFECT), st.sampled_from(["training.csv", "validation.csv"]), st.sampled_from([7, 8]))
def _affectnet(data: bytes, which: str, classes: int) -> None:
    from facefactors.data.affectnet import load_affectnet

    root = _tmp()
    for name in ("training.csv", "validation.csv"):
        (root / name).write_bytes(data if name == which else AFFECT)
    loads_or_says_why(lambda: load_affectnet(root, num_classes=classes, check_files=False))


test_fuzz_affectnet, test_fuzz_affectnet_slow = _affectnet

_PIX = " ".join(str(v % 256) for v in range(48 * 48))
FER_OLD = f"emotion,pixels,Usage\n3,{_PIX},Training\n0,{_PIX},PublicTest\n".encode()
FER_NEW = (
    b"Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
    b"Training,fer0000000.png,0,6,4,0,0,0,0,0,0,0\nPublicTest,fer0000001.png,10,0,0,0,0,0,0,0,0,0\n"
)


@fuzz(
    st.one_of(
        mutated(FER_OLD).map(lambda d: (d, FER_NEW)), mutated(FER_NEW).map(lambda d: (FER_OLD, d))
    )
)
def _ferplus(pair: tuple[bytes, bytes]) -> None:
    from facefactors.data.ferplus import load_fer2013, load_ferplus

    root = _tmp()
    (root / "fer2013.csv").write_bytes(pair[0])
    (root / "fer2013new.csv").write_bytes(pair[1])
    loads_or_says_why(lambda: load_ferplus(root))
    loads_or_says_why(lambda: load_fer2013(root))


test_fuzz_ferplus, test_fuzz_ferplus_slow = _ferplus

CSV = b"path,label,split,subject,fold\na.png,happy,train,s1,0\nb.png,sad,test,s2,1\n"


@fuzz(mutated(CSV))
def _csv(data: bytes) -> None:
    from facefactors.data.csvset import load_csv

    root = _tmp()
    (root / "list.csv").write_bytes(data)
    loads_or_says_why(lambda: load_csv(root / "list.csv", check_files=False))


test_fuzz_csv, test_fuzz_csv_slow = _csv

CK_CODE = b"   5.0000000e+00\n"
CK_LANDMARKS = b"".join(b"   %.7e   %.7e\n" % (10.0 + k, 20.0 + k) for k in range(68))


@fuzz(st.one_of(mutated(CK_CODE).map(lambda d: (d, CK_LANDMARKS)),
                mutated(CK_LANDMARKS).map(lambda d: (CK_CODE, d))))  # fmt: skip
def _ckplus(pair: tuple[bytes, bytes]) -> None:
    from facefactors.data.ckplus import load_ckplus

    root = _tmp()
    seq = ("S005", "001")
    for i in (1, 2, 3, 4):
        _image(root / "cohn-kanade-images" / seq[0] / seq[1] / f"S005_001_{i:08d}.png")
    (root / "Emotion" / seq[0] / seq[1]).mkdir(parents=True)
    (root / "Emotion" / seq[0] / seq[1] / "S005_001_00000004_emotion.txt").write_bytes(pair[0])
    lm = root / "Landmarks" / seq[0] / seq[1]
    lm.mkdir(parents=True)
    for i in (1, 2, 3, 4):
        (lm / f"S005_001_{i:08d}_landmarks.txt").write_bytes(pair[1])
    loads_or_says_why(lambda: load_ckplus(root, folds=1))


test_fuzz_ckplus, test_fuzz_ckplus_slow = _ckplus


@pytest.fixture(scope="module")
def prepared_files() -> dict[str, bytes]:
    """The prepared.json and annotations.csv of a real `prepare --no-detect` run."""
    from facefactors.prepare.runner import PrepareOptions, prepare_dataset

    root = _tmp()
    for name in ("a", "b", "c"):
        _image(root / f"{name}.png")
    (root / "list.csv").write_text(
        "path,label,split\na.png,happy,train\nb.png,sad,test\nc.png,sad,train\n"
    )
    opts = PrepareOptions("csv", root / "list.csv", root / "out", size=16, detect=False)
    prepare_dataset(opts, log=lambda m: None)
    return {n: (root / "out" / n).read_bytes() for n in ("prepared.json", "annotations.csv")}


def _prepared(prepared_files, data) -> None:
    from facefactors.data.prepared import load_prepared

    name = data.draw(st.sampled_from(sorted(prepared_files)))
    root = _tmp()
    for n, content in prepared_files.items():
        (root / n).write_bytes(data.draw(mutated(content)) if n == name else content)
    loads_or_says_why(lambda: load_prepared(root, check_files=False))


_settings = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))
test_fuzz_prepared = settings(max_examples=FAST, **_settings)(given(data=st.data())(_prepared))
test_fuzz_prepared_slow = pytest.mark.slow(
    settings(max_examples=SLOW, **_settings)(given(data=st.data())(_prepared))
)


# ---------------------------------------------------------------- --set overrides

KEYS = ["train.lr", "train.epochs", "train.device", "train.betas", "model.width", "data.size",
        "loss.k0", "model.classes", "train", "model.variant", "train.max_steps"]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["1e-3", ".nan", "-.inf", "[1, 2]", "{a: 1}", "null", "true", "1e999",
                     "!!python/object:os.system", "[[[[", "'", "0x10", "cuda", "tpu", "-1"]),
    st.floats().map(repr),
    st.integers().map(str),
)  # fmt: skip


@fuzz(
    st.lists(
        st.one_of(
            st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), VALUES).map(
                lambda kv: f"{kv[0]}={kv[1]}"
            ),
            st.text(max_size=20),
        ),
        max_size=3,
    )
)
def _overrides(overrides: list[str]) -> None:  # fmt: skip
    from facefactors.config import load_config
    from facefactors.ipd.config import IPDConfig, validate_config
    from facefactors.tensorial.config import TensorialConfig, validate

    loads_or_says_why(lambda: validate_config(load_config(IPDConfig, None, overrides)))
    loads_or_says_why(lambda: validate(load_config(TensorialConfig, None, overrides)))


test_fuzz_set_overrides, test_fuzz_set_overrides_slow = _overrides


# ---------------------------------------------------------------- checkpoints


def _export_state() -> dict[str, Any]:
    from facefactors.ipd.export import inference_state
    from inference_helpers import tiny_model

    model, cfg = tiny_model()
    return inference_state(model, cfg)


_EXPORT = _export_state()
_TRAIN = {
    "format": "facefactors.ipd.train/1",
    "classes": _EXPORT["classes"],
    "config": _EXPORT["config"],
    "model": {f"e_exp.{k}": v for k, v in _EXPORT["e_exp"].items()}
    | {f"c_exp.{k}": v for k, v in _EXPORT["c_exp"].items()},
}
_LEAVES = st.one_of(
    st.none(), st.text(max_size=6), st.integers(-3, 40), st.floats(allow_nan=True),
    st.lists(st.integers(-2, 5), max_size=3), st.just({}),
    st.sampled_from([(2, 2), (0,), (3, 4, 1)]).map(torch.zeros),
)  # fmt: skip


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    return out


def _mutate_dict(state: dict, data) -> dict:
    """A copy of ``state`` with a few entries deleted or replaced by random values."""
    import copy

    state = copy.deepcopy(state)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(state)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = state
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_LEAVES)
    return state


def _checkpoint(data) -> None:
    from facefactors.checkpoint import save_checkpoint
    from facefactors.export.classifier import load_expression_model
    from facefactors.ipd.train import read_checkpoint

    path = _tmp() / "model.pt"
    kind = data.draw(st.sampled_from(["dict", "bytes"]))
    base = data.draw(st.sampled_from([_EXPORT, _TRAIN]))
    if kind == "dict":
        save_checkpoint(path, _mutate_dict(base, data))
    else:
        save_checkpoint(path, base)
        path.write_bytes(data.draw(mutated_bytes(path.read_bytes())))
    loads_or_says_why(lambda: load_expression_model(path))
    loads_or_says_why(lambda: read_checkpoint(path))


def mutated_bytes(valid: bytes) -> st.SearchStrategy[bytes]:
    """Byte-level edits of a binary file (no text re-encoding)."""
    return st.lists(_edit, min_size=1, max_size=3).map(lambda edits: _apply_binary(valid, edits))


def _apply_binary(valid: bytes, edits) -> bytes:
    data = bytearray(valid)
    for pos, length, blob, op in edits:
        i = pos % (len(data) + 1)
        if op in (0, 3):
            del data[i : i + (length if op == 0 else len(data))]
        else:
            data[i : i + (len(blob) if op == 2 else 0)] = blob
    return bytes(data)


test_fuzz_checkpoint = settings(max_examples=FAST, **_settings)(given(data=st.data())(_checkpoint))
test_fuzz_checkpoint_slow = pytest.mark.slow(
    settings(max_examples=SLOW, **_settings)(given(data=st.data())(_checkpoint))
)
