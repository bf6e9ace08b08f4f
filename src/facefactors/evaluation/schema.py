"""The ``results.json`` schema (``facefactors.results/v1``): build, convert, validate, load.

The schema itself is written down in ``SCHEMA.md`` next to this module. In short::

    {"schema": "facefactors.results/v1",
     "dataset": {"name", "classes", ...}, "settings": {...}, "notes": [...],
     "methods": {"<method>": {"seeds", "accuracy": {"best","mean","std","n","per_seed"},
                              "per_class", "confusion", "pose_subsets", "leakage",
                              "neutral_fidelity", ...}},
     "plots": {"<kind>/<method>": "relative.png"}}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facefactors.constants import POSE_BIN_EDGES
from facefactors.errors import DataError
from facefactors.evaluation.metrics import (
    accuracy,
    confusion_matrix,
    f1_macro,
    mean_class_accuracy,
    per_class_accuracy,
    pose_subset_accuracy,
    seed_summary,
)
from facefactors.textfile import read_text

SCHEMA_VERSION = "facefactors.results/v1"
SUMMARY_KEYS = ("best", "mean", "std", "n", "per_seed")
PROBE_KEYS = ("acc", "chance_majority", "chance_uniform")
FIDELITY_KEYS = ("psnr", "ssim", "id_cosine", "n")


def summarize_seeds(values: Sequence[float]) -> dict[str, Any]:
    """A schema seed summary: :func:`seed_summary` plus the per-seed values."""
    return {**seed_summary(values), "per_seed": [float(v) for v in values]}


def method_entry(
    seeds: Sequence[int],
    preds_per_seed: Sequence[Any],
    true: Any,
    num_classes: int,
    class_names: Sequence[str],
    yaw_deg: Any = None,
    thresholds: Sequence[float] = POSE_BIN_EDGES,
    report_seed: int | None = None,
) -> dict[str, Any]:
    """Build one ``methods.<method>`` entry from the test predictions of each seed.

    Args:
        seeds: the S training seeds.
        preds_per_seed: S arrays of predicted class indices, each shape (N,).
        true: true class indices of the test set, shape (N,).
        num_classes: K.
        class_names: K class names in index order.
        yaw_deg: optional yaw of each test sample in degrees, shape (N,), for the
            pose subsets.
        thresholds: pose-subset thresholds in degrees.
        report_seed: the seed whose predictions give the per-class, confusion and
            pose-subset fields; by default the seed with the best accuracy (the
            paper reports its best run).

    Returns:
        A dict with seeds, accuracy, mean_class_accuracy, f1_macro, report_seed,
        per_class, confusion and (with ``yaw_deg``) pose_subsets. Leakage and
        neutral fidelity are added by the caller.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) == 0 or len(seeds) != len(preds_per_seed):
        raise DataError(f"Got {len(seeds)} seeds but {len(preds_per_seed)} prediction arrays.")
    if len(class_names) != num_classes:
        raise DataError(f"Got {len(class_names)} class names for {num_classes} classes.")
    accs = [accuracy(p, true) for p in preds_per_seed]
    if report_seed is None:
        report_seed = seeds[int(np.argmax(accs))]
    if report_seed not in seeds:
        raise DataError(f"Argument 'report_seed' {report_seed} is not one of the seeds {seeds}.")
    pred = preds_per_seed[seeds.index(report_seed)]
    recalls = per_class_accuracy(pred, true, num_classes)
    entry: dict[str, Any] = {
        "seeds": seeds,
        "accuracy": summarize_seeds(accs),
        "mean_class_accuracy": summarize_seeds(
            [mean_class_accuracy(p, true, num_classes) for p in preds_per_seed]
        ),
        "f1_macro": summarize_seeds([f1_macro(p, true, num_classes) for p in preds_per_seed]),
        "report_seed": int(report_seed),
        "per_class": {name: to_jsonable(float(r)) for name, r in zip(class_names, recalls)},
        "confusion": confusion_matrix(pred, true, num_classes).tolist(),
    }
    if yaw_deg is not None:
        entry["pose_subsets"] = pose_subset_accuracy(pred, true, yaw_deg, thresholds)
    return entry


def baseline_method(results: Mapping[str, Any]) -> str | None:
    """The method others are compared with: ``baseline_method``, else "baseline"; None if absent."""
    name = results.get("baseline_method", "baseline")
    return name if name in results["methods"] else None


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy/torch values to plain JSON types; NaN and ±inf become None."""
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise DataError(f"Results value of type {type(obj).__name__} cannot be stored in JSON.")


def _need(d: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    """Return ``d[key]``, raising a DataError naming ``where.key`` if absent or mistyped."""
    path = f"{where}.{key}" if where else key
    if not isinstance(d, Mapping) or key not in d:
        raise DataError(f"Results key '{path}' is missing.")
    value = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is a subclass of int, but True is not a count or an accuracy.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = "/".join(t.__name__ for t in kinds)
        raise DataError(
            f"Results key '{path}' must be of type {names}, got {type(value).__name__}."
        )
    return value


_NUM = (int, float)
_OPT_NUM = (int, float, type(None))


def _check_summary(d: Any, where: str) -> None:
    for key in SUMMARY_KEYS:
        _need(d, key, where, list if key == "per_seed" else _NUM)


def _check_method(m: Any, where: str, classes: list[str]) -> None:
    seeds = _need(m, "seeds", where, list)
    if not seeds:
        raise DataError(f"Results key '{where}.seeds' is empty.")
    _check_summary(_need(m, "accuracy", where, dict), f"{where}.accuracy")
    for key in ("mean_class_accuracy", "f1_macro"):
        if key in m:
            _check_summary(_need(m, key, where, dict), f"{where}.{key}")
    if "per_class" in m:
        for name in _need(m, "per_class", where, dict):
            if name not in classes:
                raise DataError(
                    f"Results key '{where}.per_class.{name}' is not in dataset.classes."
                )
            _need(m["per_class"], name, f"{where}.per_class", _OPT_NUM)
    if "confusion" in m:
        cm = _need(m, "confusion", where, list)
        k = len(classes)
        if len(cm) != k or any(not isinstance(r, list) or len(r) != k for r in cm):
            raise DataError(f"Results key '{where}.confusion' must be a {k}x{k} list of lists.")
    if "pose_subsets" in m:
        subsets = _need(m, "pose_subsets", where, dict)
        _need(subsets, "all", f"{where}.pose_subsets", dict)
        for name, sub in subsets.items():
            _need(sub, "n", f"{where}.pose_subsets.{name}", int)
            _need(sub, "acc", f"{where}.pose_subsets.{name}", _OPT_NUM)
    if "leakage" in m:
        for factor, probe in _need(m, "leakage", where, dict).items():
            for key in PROBE_KEYS:
                _need(probe, key, f"{where}.leakage.{factor}", _NUM)
    if "neutral_fidelity" in m:
        fid = _need(m, "neutral_fidelity", where, dict)
        for key in FIDELITY_KEYS:
            _need(fid, key, f"{where}.neutral_fidelity", int if key == "n" else _OPT_NUM)
    if "reconstruction" in m:
        _need(_need(m, "reconstruction", where, dict), "psnr", f"{where}.reconstruction", _NUM)
    if "f_id_expression_probe" in m:
        _need(_need(m, "f_id_expression_probe", where, dict), "acc",
              f"{where}.f_id_expression_probe", _NUM)  # fmt: skip
    if "vs_baseline" in m:
        vs = _need(m, "vs_baseline", where, dict)
        for key in ("mean_diff", "ci95_low", "ci95_high"):
            _need(vs, key, f"{where}.vs_baseline", _NUM)
        _need(vs, "mcnemar_p", f"{where}.vs_baseline", list)


def validate_results(results: Any) -> None:
    """Check ``results`` against ``facefactors.results/v1``.

    Raises:
        DataError: naming the first missing or mistyped key, e.g.
            ``Results key 'methods.ipd.accuracy.mean' is missing.``
    """
    if not isinstance(results, Mapping):
        raise DataError(f"Results must be a JSON object, got {type(results).__name__}.")
    version = _need(results, "schema", "", str)
    if version != SCHEMA_VERSION:
        raise DataError(f"Results key 'schema' is {version!r}, expected {SCHEMA_VERSION!r}.")
    dataset = _need(results, "dataset", "", dict)
    _need(dataset, "name", "dataset", str)
    classes = _need(dataset, "classes", "dataset", list)
    _need(results, "settings", "", dict)
    notes = _need(results, "notes", "", list)
    if any(not isinstance(n, str) for n in notes):
        raise DataError("Results key 'notes' must be a list of strings.")
    methods = _need(results, "methods", "", dict)
    if not methods and "tensorial" not in results:
        raise DataError("Results key 'methods' is empty.")
    for name, m in methods.items():
        _check_method(m, f"methods.{name}", classes)
    if "baseline_method" in results and results["baseline_method"] not in methods:
        raise DataError("Results key 'baseline_method' names a method that is not in 'methods'.")
    if "tensorial" in results:
        from facefactors.evaluation.tensorial_section import check_tensorial

        check_tensorial(results["tensorial"])
    for key in _need(results, "plots", "", dict) if "plots" in results else {}:
        _need(results["plots"], key, "plots", str)


def write_results_json(path: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Convert, validate and atomically write ``results`` as strict JSON (no NaN).

    Returns:
        The path written.
    """
    from facefactors.checkpoint import atomic_write_text

    data = to_jsonable(results)
    validate_results(data)
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    return Path(path)


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a ``results.json``; a bad file raises DataError naming it."""
    path = Path(path)
    text = read_text(path, "Results file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"Results file {path} is not valid JSON (line {exc.lineno}).") from None
    try:
        validate_results(data)
    except DataError as exc:
        raise DataError(f"Results file {path}: {exc}") from None
    return data
