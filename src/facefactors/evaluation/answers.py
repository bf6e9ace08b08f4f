"""The paper's three questions, answered from a results dict in plain sentences.

1. Does disentangling identity and pose beat the fine-tuned baseline on people
   the model has never seen?
2. Does the margin grow with head pose?
3. Does the generated neutral face keep the person and the pose?

With a ``vs_baseline`` entry (:mod:`facefactors.evaluation.paired`) a method's
difference from the baseline is the mean over seeds, paired on the same test faces,
with a 95 % interval from a bootstrap over test *identities* and McNemar's exact test
per seed; it is called clear only when that interval excludes zero. Classes that
carry the difference are named. Results without that entry (older files) fall back
to the unpaired bound SE = sqrt(p_a(1 − p_a)/n + p_b(1 − p_b)/n) of
:func:`margin_se` on the best seeds, called clear beyond 2 SE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def margin_se(p_a: float, p_b: float, n: int) -> float:
    """Standard error of p_a − p_b, two accuracies on the same n faces (unpaired bound).

    Each p is first kept within [1/(2n), 1 − 1/(2n)], so that a perfect or a zero
    score on a handful of faces does not claim a standard error of 0.
    """
    if n <= 0:
        return math.nan
    lo, hi = 0.5 / n, 1 - 0.5 / n
    a, b = min(max(p_a, lo), hi), min(max(p_b, lo), hi)
    return math.sqrt((a * (1 - a) + b * (1 - b)) / n)


def _verdict(delta: float, se: float) -> str:
    if not math.isfinite(se) or abs(delta) <= 2 * se:
        return "no clear difference (within 2 SE)"
    return "better" if delta > 0 else "worse"


def _pp(x: float) -> str:
    return f"{100 * x:+.2f} pp"


def _interval(d: Mapping[str, Any]) -> str:
    return f"95 % CI by identity [{_pp(d['ci95_low'])}, {_pp(d['ci95_high'])}]"


def _ci_verdict(d: Mapping[str, Any]) -> str:
    if d["ci95_low"] > 0:
        return "better"
    if d["ci95_high"] < 0:
        return "worse"
    return "no clear difference (the interval holds 0)"


def _question_1(name: str, m: Mapping[str, Any], b: Mapping[str, Any], base: str) -> list[str]:
    acc, ref = m["accuracy"], b["accuracy"]
    vs = m.get("vs_baseline")
    if vs is None:
        return _question_1_unpaired(name, m, b, base)
    ps = ", ".join(f"{p:.3g}" for p in vs["mcnemar_p"])
    line = (
        f"- **{name}** {100 * acc['mean']:.2f} % vs {base} {100 * ref['mean']:.2f} % (mean of "
        f"{acc['n']} and {ref['n']} seeds): {_pp(vs['mean_diff'])}, {_interval(vs)} "
        f"({vs['identities']} people, {vs['n']} faces); per-seed differences "
        f"{', '.join(_pp(x) for x in vs['seed_diffs'])}; McNemar p per seed {ps}: "
        f"{_ci_verdict(vs)}."
    )
    lines = [line]
    carried = vs.get("carried_by") or []
    if carried:
        pc = vs["per_class"]
        parts = ", ".join(
            f"{c} {_pp(pc[c]['diff'])} on its faces ({_interval(pc[c])})" for c in carried
        )
        rest = vs["mean_diff"] - sum(pc[c]["share"] for c in carried)
        lines.append(
            f"  - The difference is carried by {len(carried)} class(es): {parts}; they account "
            f"for {_pp(sum(pc[c]['share'] for c in carried))} of the {_pp(vs['mean_diff'])}, "
            f"the other classes together for {_pp(rest)}."
        )
    return lines


def _question_1_unpaired(
    name: str, m: Mapping[str, Any], b: Mapping[str, Any], base: str
) -> list[str]:
    acc, ref = m["accuracy"], b["accuracy"]
    n = m.get("pose_subsets", {}).get("all", {}).get("n", 0)
    delta, se = acc["best"] - ref["best"], margin_se(acc["best"], ref["best"], n)
    line = (
        f"- **{name}** {100 * acc['best']:.2f} % vs {base} {100 * ref['best']:.2f} %: "
        f"{_pp(delta)} (2 SE = {200 * se:.2f} pp on {n} faces): {_verdict(delta, se)}."
    )
    if acc["n"] > 1 and ref["n"] > 1:
        line += f" Mean over seeds: {_pp(acc['mean'] - ref['mean'])}."
    return [line]


def _question_2(name: str, m: Mapping[str, Any], b: Mapping[str, Any], base: str) -> list[str]:
    vs = m.get("vs_baseline", {})
    subsets = vs.get("pose_subsets")
    if not subsets:
        return _question_2_unpaired(name, m, b, base)
    keys = list(subsets)
    parts = ", ".join(
        f"|yaw|{k}° {_pp(subsets[k]['mean_diff'])} [{_pp(subsets[k]['ci95_low'])}, "
        f"{_pp(subsets[k]['ci95_high'])}] (n={subsets[k]['n']})"
        for k in keys
    )
    top = subsets[keys[-1]]
    grows = top["ci95_low"] > vs["mean_diff"]
    shrinks = top["ci95_high"] < vs["mean_diff"]
    trend = "grows" if grows else "shrinks" if shrinks else "does not clearly change"
    return [
        f"- **{name}** vs {base}, mean over seeds with 95 % CIs by identity: all "
        f"{_pp(vs['mean_diff'])}, {parts}. At |yaw|{keys[-1]}° the margin's interval "
        f"{'lies above' if grows else 'lies below' if shrinks else 'holds'} the overall "
        f"difference: it {trend} with pose."
    ]


def _question_2_unpaired(
    name: str, m: Mapping[str, Any], b: Mapping[str, Any], base: str
) -> list[str]:
    subsets, ref = m.get("pose_subsets", {}), b.get("pose_subsets", {})
    keys = [k for k in subsets if k in ref and subsets[k]["acc"] is not None]
    if "all" not in keys or len(keys) < 2:
        return []
    deltas = {k: subsets[k]["acc"] - ref[k]["acc"] for k in keys}
    parts = ", ".join(
        f"{'all' if k == 'all' else '|yaw|' + k + '°'} {_pp(d)} (n={subsets[k]['n']})"
        for k, d in deltas.items()
    )
    top = keys[-1]
    growth = deltas[top] - deltas["all"]
    se = margin_se(subsets[top]["acc"], ref[top]["acc"], subsets[top]["n"])
    trend = (
        "grows" if growth > 2 * se else "shrinks" if growth < -2 * se else "does not clearly change"
    )
    return [
        f"- **{name}** vs {base}: {parts}. From all faces to |yaw|{top}° the margin changes by "
        f"{_pp(growth)} (2 SE at n={subsets[top]['n']}: {200 * se:.2f} pp): it {trend}."
    ]


def _question_3(name: str, m: Mapping[str, Any]) -> list[str]:
    f = m.get("neutral_fidelity")
    if not f:
        return []
    psnr = "–" if f["psnr"] is None else f"{f['psnr']:.1f} dB"
    ref = ""
    if "id_cosine_other" in f:
        ref = (
            f" (other people: {f['id_cosine_other']:.3f}; the nearest true neutral face is the "
            f"person's own for {100 * f['id_rank1']:.1f} %)"
        )
    line = (
        f"- **{name}**: decode(f_id + f_pose) against the true neutral face in the same pose: "
        f"identity-embedding cosine {f['id_cosine']:.3f}{ref}, PSNR {psnr}, SSIM "
        f"{f['ssim']:.3f} ({f['n']} faces). The cosine comes from N, which L_id trains the "
        "decoder against: check the sample grids before reading it as likeness."
    )
    if "side" in f:
        sd = f["side"]
        line += (
            f" On faces turned by {sd['min_abs_yaw']:.0f}° or more it scores {sd['psnr']:.1f} dB "
            f"against the true neutral and {sd['psnr_mirrored']:.1f} dB against its mirror image, "
            f"and is closer to the true one for {100 * sd['correct_side']:.0f} % of {sd['n']} "
            "faces (50 % for a decoder blind to the side)."
        )
    rec = m.get("reconstruction") or {}
    if "expression_change_cos" in rec:
        cos = rec["expression_change_cos"]
        line += (
            f" Adding f_exp changes the decode along the true expression change with cosine "
            f"{cos:.3f} (1: it draws the expression; 0: unrelated or no change)"
        )
        if "expression_response_gain" in rec:
            line += (
                f" and draws {100 * rec['expression_gain']:.0f} % of it; fed the true neutral "
                "face instead of x, the whole model's x̂_{i-p-e} changes by "
                f"{100 * rec['expression_response_gain']:.0f} % of the expression (cosine "
                f"{rec['expression_response_cos']:.3f})"
            )
        if "expression_rms" in rec:
            line += (
                f"; the decodes differ by RMS {rec['decode_change_rms']:.4f} where the true "
                f"change is {rec['expression_rms']:.4f}, and the reconstruction's error "
                f"({rec['rmse']:.4f}) is {rec['rmse'] / rec['expression_rms']:.1f} times the "
                "whole expression change"
            )
        if "decode_change_off_expression" in rec:
            line += (
                f"; {100 * rec['decode_change_off_expression']:.0f} % of the decodes' difference "
                "lies in pixels the expression leaves unchanged, and it points toward the true "
                f"neutral face with cosine {rec['decode_change_neutral_cos']:.3f}"
            )
        if "bg_chroma_err" in rec:
            line += (
                f"; background hue error {rec['bg_chroma_err']:.4f} against "
                f"{rec['bg_chroma_err_mean']:.4f} for one mean hue"
            )
        line += "."
    return [line]


def _premise(methods: Mapping[str, Any], encoder: Mapping[str, Any]) -> list[str]:
    """The premise that f_id holds identity and no expression, as measured."""
    probe = next((m["f_id_expression_probe"] for m in methods.values()
                  if "f_id_expression_probe" in m), None)  # fmt: skip
    if probe is None:
        return []
    line = (
        f"**The premise: does frozen f_id hold expression?** A linear probe fitted on half "
        f"the test identities reads the expression class from f_id on the other half at "
        f"{100 * probe['acc']:.1f} % (majority class {100 * probe['chance_majority']:.1f} %, "
        f"uniform {100 * probe['chance_uniform']:.1f} %)"
    )
    nv = probe.get("neutral_vs_rest")
    if nv:
        line += (
            f"; neutral vs the rest at {100 * nv['acc']:.1f} % (majority "
            f"{100 * nv['chance_majority']:.1f} %)"
        )
    acc = encoder.get("acc") if isinstance(encoder, Mapping) else None
    if isinstance(acc, (int, float)):
        line += f". E_id verifies faces at {100 * acc:.1f} % on held-out people"
    return [line + ".", ""]


def answer_lines(results: Mapping[str, Any], baseline: str | None) -> list[str]:
    """Markdown section answering the three questions (empty without a baseline).

    Args:
        results: a validated results dict.
        baseline: the method the others are compared with.
    """
    methods = results["methods"]
    if baseline is None or len(methods) < 2:
        return []
    b = methods[baseline]
    others = [(n, m) for n, m in methods.items() if n != baseline]
    q1 = [ln for n, m in others for ln in _question_1(n, m, b, baseline)]
    q2 = [ln for n, m in others for ln in _question_2(n, m, b, baseline)]
    q3 = [ln for n, m in others for ln in _question_3(n, m)]
    lines = ["## The paper's questions", ""]
    lines += _premise(methods, results.get("settings", {}).get("identity_encoder", {}))
    lines += ["**1. Does disentangling beat the fine-tuned baseline on unseen people?**", ""]
    lines += q1 + [""]
    if q2:
        lines += ["**2. Does the margin grow with head pose?**", "", *q2, ""]
    if q3:
        lines += ["**3. Does the generated neutral face keep the person and the pose?**", ""]
        lines += q3 + [""]
    return lines
