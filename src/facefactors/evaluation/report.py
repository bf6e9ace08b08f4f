"""Render ``report.md`` from a ``results.json`` dict (schema ``facefactors.results/v1``).

The report is a pure function of the results (:func:`render_report_md`): every
number and every plot link in ``report.md`` comes from ``results.json``, so the
two can never disagree. :func:`write_report` writes both from one dict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from facefactors.checkpoint import atomic_write_text
from facefactors.evaluation.answers import answer_lines
from facefactors.evaluation.metrics import fmt_best_mean_std
from facefactors.evaluation.schema import (
    baseline_method,
    to_jsonable,
    validate_results,
    write_results_json,
)
from facefactors.evaluation.tensorial_section import tensorial_lines

__all__ = [
    "render_report_md",
    "validate_results",
    "write_report",
    "write_report_md",
    "write_results_json",
]

_DASH = "–"


def _pct(x: Any) -> str:
    return _DASH if x is None else f"{100.0 * float(x):.2f}"


def _num(x: Any, digits: int) -> str:
    return _DASH if x is None else f"{float(x):.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _subset_label(key: str) -> str:
    return "All" if key == "all" else f"Pose({key}°)"


def _overall(methods: Mapping[str, Any]) -> list[str]:
    rows = []
    trained = any("training" in m for m in methods.values())  # schedule/epochs columns
    for name, m in methods.items():
        tr = m.get("training", {})
        how = [tr.get("schedule", _DASH), str(tr.get("epochs", _DASH))] if trained else []
        rows.append(
            [
                name,
                *how,
                str(len(m["seeds"])),
                fmt_best_mean_std(m["accuracy"]),
                fmt_best_mean_std(m["mean_class_accuracy"])
                if "mean_class_accuracy" in m
                else _DASH,
                fmt_best_mean_std(m["f1_macro"]) if "f1_macro" in m else _DASH,
            ]
        )
    header = ["Method", *(["Schedule", "Epochs"] if trained else []), "Seeds", "Accuracy (%)"]
    header += ["Mean class acc. (%)", "F1 macro (%)"]
    return [
        "## Overall accuracy",
        "",
        "Best (mean±std) over seeds; std is the sample std.",
        "",
    ] + _table(header, rows)


def _per_class(methods: Mapping[str, Any], classes: Sequence[str]) -> list[str]:
    shown = {n: m for n, m in methods.items() if "per_class" in m}
    if not shown:
        return []
    header = ["Class"] + [f"{n} (seed {m.get('report_seed', '?')})" for n, m in shown.items()]
    rows = [[c] + [_pct(m["per_class"].get(c)) for m in shown.values()] for c in classes]
    return ["## Per-class accuracy (recall, %)", ""] + _table(header, rows)


def _pose_subsets(methods: Mapping[str, Any]) -> list[str]:
    shown = {n: m["pose_subsets"] for n, m in methods.items() if "pose_subsets" in m}
    if not shown:
        return []
    first = next(iter(shown.values()))
    keys = list(first)
    # One "Number" column like the paper's only when every method saw the same subsets.
    same_n = all(len({s.get(k, {}).get("n") for s in shown.values()}) == 1 for k in keys)
    header = ["Test set"] + (["Number"] if same_n else []) + list(shown)
    rows = []
    for k in keys:
        row = [_subset_label(k)]
        if same_n:
            row.append(str(first[k]["n"]))
        for s in shown.values():
            cell = _pct(s.get(k, {}).get("acc"))
            row.append(cell if same_n else f"{cell} (n={s.get(k, {}).get('n', _DASH)})")
        rows.append(row)
    intro = "Accuracy (%) on the test samples whose |yaw| exceeds each threshold (paper Table 8)."
    return ["## Accuracy by head pose", "", intro, ""] + _table(header, rows)


def _leakage(methods: Mapping[str, Any], baseline: str | None) -> list[str]:
    shown = {n: m["leakage"] for n, m in methods.items() if "leakage" in m}
    if not shown:
        return []
    base = shown.get(baseline, {}) if baseline else {}
    rows = []
    for name, probes in shown.items():
        for factor, p in probes.items():
            delta = _DASH
            if name != baseline and factor in base:
                delta = f"{100.0 * (p['acc'] - base[factor]['acc']):+.2f}"
            rows.append(
                [
                    name,
                    factor,
                    _pct(p["acc"]),
                    _pct(p["chance_majority"]),
                    _pct(p["chance_uniform"]),
                    delta,
                ]
            )
    header = ["Method", "Factor", "Probe acc. (%)", "Chance, majority (%)", "Chance, 1/K (%)"]
    header.append(f"Δ vs {baseline} (pp)" if baseline else "Δ vs baseline (pp)")
    intro = (
        "Linear-probe accuracy of each factor from f_exp on test identities (fitted and "
        "scored on disjoint samples of each identity). Lower is better; chance is the floor."
    )
    return ["## Leakage into the expression feature", "", intro, ""] + _table(header, rows)


def _fidelity(methods: Mapping[str, Any]) -> list[str]:
    shown = {n: m["neutral_fidelity"] for n, m in methods.items() if "neutral_fidelity" in m}
    if not shown:
        return []
    ref = any("id_cosine_other" in f for f in shown.values())  # reference columns
    hue = any("bg_chroma_err" in (methods[n].get("reconstruction") or {}) for n in shown)
    size = any("expression_rms" in (methods[n].get("reconstruction") or {}) for n in shown)
    side = any("side" in f for f in shown.values())
    rows = []
    for n, f in shown.items():
        rec = methods[n].get("reconstruction") or {}
        row = [n, _num(rec.get("psnr"), 2), _num(f["psnr"], 2), _num(f["ssim"], 4),
               _num(f["id_cosine"], 4)]  # fmt: skip
        if ref:
            row += [_num(f.get("id_cosine_other"), 4), _pct(f.get("id_rank1"))]
        if hue:
            row += [f"{_num(rec.get('bg_chroma_err'), 4)} ({_num(rec.get('bg_chroma_err_mean'), 4)})",
                    _num(rec.get("expression_change_cos"), 3)]  # fmt: skip
        if size:
            row += [f"{_num(rec.get('decode_change_rms'), 4)} / {_num(rec.get('expression_rms'), 4)}"
                    f" ({_num(rec.get('rmse'), 4)})",
                    f"{_pct(rec.get('decode_change_off_expression'))} / "
                    f"{_num(rec.get('decode_change_neutral_cos'), 3)}"]  # fmt: skip
        if side:
            sd = f.get("side") or {}
            row += [f"{_num(sd.get('psnr'), 2)} / {_num(sd.get('psnr_mirrored'), 2)} "
                    f"({_pct(sd.get('correct_side'))})"]  # fmt: skip
        rows.append(row + [str(f["n"])])
    intro = (
        "Reconstruction: decode(f_id + f_pose + f_exp) against the input x. Neutral: "
        "decode(f_id + f_pose) against the true neutral face of the same person and pose."
    )
    if ref:
        intro += (
            " ID cosine (other people): the same cosine to other identities' neutral faces,"
            " its reference; rank-1: how often the nearest true neutral face is the person's"
            " own. The embeddings come from N, the network L_id trains the decoder against,"
            " so a high cosine shows N is satisfied, not that the face looks right:"
            " see the sample grids."
        )
    header = ["Method", "Reconstruction PSNR (dB)", "Neutral PSNR (dB)", "Neutral SSIM",
              "ID cosine"]  # fmt: skip
    header += ["ID cosine (other people)", "Rank-1 (%)"] if ref else []
    if hue:
        header += ["Background hue error (mean-hue floor)", "Expression change cos"]
        intro += (
            " Background hue error: mean absolute difference of the corners' chroma (RGB"
            " minus its grey, [0, 1] units) between the reconstruction and x; in brackets"
            " the error of drawing every background in the test set's mean hue, which a"
            " decoder that carries no hue reaches. Expression change cos: the cosine"
            " between x̂_{i-p-e} − x̂_{i-p} and x − (true neutral) over expressive faces;"
            " 1 when adding f_exp draws the true expression change, 0 when it draws none."
        )
    if size:
        header += ["Expression change RMS, drawn / true (reconstruction RMSE)",
                   "Drawn change off the expression (%) / cos toward true neutral"]  # fmt: skip
        intro += (
            " Expression change RMS: the size of x̂_{i-p-e} − x̂_{i-p} and of x − (true"
            " neutral) over expressive faces ([0, 1] units; 1/255 is one grey level), and in"
            " brackets the RMS error of the reconstruction over all faces: a decoder whose"
            " error is several times the whole expression change cannot show it. Drawn"
            " change off the expression: the share of x̂_{i-p-e} − x̂_{i-p}'s energy in pixels"
            " the expression leaves unchanged (at most 2/255), and its cosine with (true"
            " neutral) − x̂_{i-p}, which holds no expression: high values mean f_exp corrects"
            " the neutral decode's appearance instead of adding the expression."
        )
    if side:
        yaw = next(f["side"]["min_abs_yaw"] for f in shown.values() if "side" in f)
        header += ["Side test: neutral PSNR vs true / mirrored (dB) (closer to true, %)"]
        intro += (
            f" Side test, on faces turned by at least {yaw:.0f}°: the neutral decode's PSNR"
            " against the true neutral face and against its left-right mirror image (same"
            " |yaw|, light strength and colours, facing the other way); a decoder that draws"
            " the pose wins by several dB and on nearly every face, one blind to the side ties"
            " and wins half."
        )
    return ["## Generator fidelity", "", intro, ""] + _table(header + ["Images"], rows)


def _paired(methods: Mapping[str, Any], classes: Sequence[str]) -> list[str]:
    shown = {n: m["vs_baseline"] for n, m in methods.items() if "vs_baseline" in m}
    if not shown:
        return []
    lines = ["## Paired differences from the baseline", "",
             "Mean over seeds of (method − baseline) accuracy on the same test faces, 95 % "
             "interval from a bootstrap over test identities, McNemar's exact p per seed pair.",
             ""]  # fmt: skip
    rows = [[n, _pp(v["mean_diff"]), f"[{_pp(v['ci95_low'])}, {_pp(v['ci95_high'])}]",
             ", ".join(_pp(x) for x in v["seed_diffs"]),
             ", ".join(f"{p:.3g}" for p in v["mcnemar_p"]), str(v["identities"])]
            for n, v in shown.items()]  # fmt: skip
    lines += _table(["Method", "Mean diff", "95 % CI (identities)", "Per seed", "McNemar p",
                     "People"], rows)  # fmt: skip
    rows = []
    for c in classes:
        row = [c]
        for v in shown.values():
            d = v.get("per_class", {}).get(c)
            row.append("–" if d is None else
                       f"{_pp(d['diff'])} [{_pp(d['ci95_low'])}, {_pp(d['ci95_high'])}]")  # fmt: skip
        rows.append(row)
    lines += ["Per class (recall on that class's faces, with its interval):", ""]
    lines += _table(["Class", *shown], rows)
    return lines


def _pp(x: float) -> str:
    return f"{100 * x:+.2f} pp"


def _folds(methods: Mapping[str, Any]) -> list[str]:
    shown = {n: m for n, m in methods.items() if m.get("folds")}
    if not shown:
        return []
    first = next(iter(shown.values()))["folds"]
    rows = []
    for i, f in enumerate(first):
        cells = [_pct(m["folds"][i]["accuracy"]["mean"]) for m in shown.values()]
        rows.append([str(f["fold"]), str(len(f["test_subjects"])), str(f["n_test"]), *cells])
    summary = ["mean ± std", "", ""]
    for m in shown.values():
        s = m.get("fold_summary")
        summary.append(_DASH if s is None else f"{_pct(s['mean'])} ± {_pct(s['std'])}")
    intro = (
        "Accuracy (%) on each test fold (mean over seeds); no test person is in that fold's "
        "training or validation data. The last row is the mean ± sample std over folds."
    )
    header = ["Fold", "Test people", "Test faces", *shown]
    return ["## Cross-validation folds", "", intro, ""] + _table(header, [*rows, summary])


def _plots(plots: Mapping[str, str]) -> list[str]:
    if not plots:
        return []
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, rel in plots.items():
        groups.setdefault(key.split("/", 1)[0], []).append((key, rel))
    lines = ["## Plots", ""]
    for kind, items in groups.items():
        lines += [f"### {kind}", ""]
        for key, rel in items:
            lines += [f"![{key}]({Path(rel).as_posix()})", ""]
    return lines


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v if isinstance(v, str) else json.dumps(v)))
    return out


def _settings(results: Mapping[str, Any]) -> list[str]:
    lines = ["## Settings and caveats", ""]
    extra = [(k, v) for k, v in results["dataset"].items() if k not in ("name", "classes")]
    rows = [["dataset.classes", ", ".join(results["dataset"]["classes"])]]
    rows += [[f"dataset.{k}", str(v)] for k, v in extra]
    rows += [[k, f"`{v}`"] for k, v in _flatten(results["settings"])]
    lines += _table(["Setting", "Value"], rows)
    notes = results["notes"]
    lines += [f"- {n}" for n in notes] if notes else ["- No caveats recorded."]
    return lines + [""]


def render_report_md(results: Mapping[str, Any]) -> str:
    """The Markdown report of a validated results dict.

    Sections: the paper's three questions answered against the baseline
    (:mod:`facefactors.evaluation.answers`), overall accuracy, per-class accuracy, accuracy by head pose,
    leakage, neutral-face fidelity, plots, settings and caveats. A section is
    left out when no method has its data.
    """
    validate_results(results)
    methods = results["methods"]
    lines = [
        f"# Results: {results['dataset']['name']}",
        "",
        f"Rendered from `results.json` (schema `{results['schema']}`); methods: "
        + ", ".join([*methods, *results.get("tensorial", {}).get("latent_svm", {})])
        + ".",
        "",
    ]
    if methods:  # a report of tensorial runs alone has no expression recognisers
        lines += answer_lines(results, baseline_method(results))
        lines += _overall(methods)
        lines += _folds(methods)
        lines += _paired(methods, results["dataset"]["classes"])
        lines += _per_class(methods, results["dataset"]["classes"])
        lines += _pose_subsets(methods)
        lines += _leakage(methods, baseline_method(results))
        lines += _fidelity(methods)
    if "tensorial" in results:
        lines += tensorial_lines(results["tensorial"])
    lines += _plots(results.get("plots", {}))
    lines += _settings(results)
    return "\n".join(lines).rstrip() + "\n"


def write_report_md(path: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Render ``results`` to Markdown and write it atomically to ``path``.

    Plot paths in ``results["plots"]`` are written as given, so they should be
    relative to the folder of ``path`` (the run folder).
    """
    atomic_write_text(path, render_report_md(to_jsonable(results)))
    return Path(path)


def write_report(
    run_dir: str | os.PathLike,
    results: Mapping[str, Any],
    json_name: str = "results.json",
    md_name: str = "report.md",
) -> tuple[Path, Path]:
    """Write ``results.json`` and the ``report.md`` rendered from it into ``run_dir``.

    Returns:
        ``(json_path, md_path)``.
    """
    run_dir = Path(run_dir)
    json_path = write_results_json(run_dir / json_name, results)
    # Render from the file just written, so the report sees exactly what is stored.
    stored = json.loads(json_path.read_text(encoding="utf-8"))
    return json_path, write_report_md(run_dir / md_name, stored)
