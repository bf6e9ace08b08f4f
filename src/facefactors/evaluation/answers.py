"""The paper's three questions, answered from a results dict in plain sentences.

1. Does disentangling identity and pose beat the fine-tuned baseline on people
   the model has never seen?
2. Does the margin grow with head pose?
3. Does the generated neutral face keep the person and the pose?

A difference of accuracies p_a − p_b on n test faces has the (unpaired, hence
conservative) standard error SE = sqrt(p_a(1 − p_a)/n + p_b(1 − p_b)/n) (see
:func:`margin_se`); a margin
is called clear only when it exceeds 2 SE. With several seeds the best runs are
compared, as the paper does, and the mean difference is given too.
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


def _question_1(name: str, m: Mapping[str, Any], b: Mapping[str, Any], base: str) -> list[str]:
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
    return [
        f"- **{name}**: decode(f_id + f_pose) against the true neutral face in the same pose: "
        f"identity-embedding cosine {f['id_cosine']:.3f}{ref}, PSNR {psnr}, SSIM "
        f"{f['ssim']:.3f} ({f['n']} faces). The cosine comes from N, which L_id trains the "
        "decoder against: check the sample grids before reading it as likeness."
    ]


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
    lines += ["**1. Does disentangling beat the fine-tuned baseline on unseen people?**", ""]
    lines += q1 + [""]
    if q2:
        lines += ["**2. Does the margin grow with head pose?**", "", *q2, ""]
    if q3:
        lines += ["**3. Does the generated neutral face keep the person and the pose?**", ""]
        lines += q3 + [""]
    return lines
