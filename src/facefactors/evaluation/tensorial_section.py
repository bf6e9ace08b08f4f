"""The ``tensorial`` section of ``results.json``: its required keys and its Markdown.

Pure functions over the stored dict (see ``SCHEMA.md``), so the report shows exactly
what the file holds. The section opens by answering the paper's claims with the
measured numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from facefactors.errors import DataError

CODES = {"tensorial": ("z_b", "z_m", "z_l", "z_p", "z_id", "z_exp"), "z0": ("z0",)}
FACTORS = ("identity", "expression", "pose")
OWN = {"z_id": "identity", "z_exp": "expression", "z_p": "pose"}
TRANSFER_KEYS = ("edit_psnr", "noedit_psnr", "edit_ssim", "id_cosine", "class_agreement",
                 "pose_error_deg")  # fmt: skip


def _at(d: Any, path: str) -> Any:
    cur = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise DataError(f"Results key 'tensorial.{path}' is missing.")
        cur = cur[part]
    return cur


def check_tensorial(section: Any) -> None:
    """Raise DataError naming the first required key that is missing or mistyped.

    ``id_cosine``, ``class_agreement`` and ``pose_error_deg`` may be null (no judge
    given); every other
    required figure is a number.
    """
    if not isinstance(section, Mapping):
        raise DataError("Results key 'tensorial' must be an object.")
    for model in _at(section, "latent_svm"):
        for code in CODES.get(model, ()):
            for factor in FACTORS:
                acc = _at(section, f"latent_svm.{model}.{code}.{factor}.acc")
                if not isinstance(acc, (int, float)) or not 0.0 <= acc <= 1.0:
                    raise DataError(
                        f"Results key 'tensorial.latent_svm.{model}.{code}.{factor}.acc' "
                        "must be a fraction in [0, 1]."
                    )
    _at(section, "latent_svm.tensorial")
    for model in _at(section, "dci"):
        for key in ("disentanglement", "completeness", "informativeness"):
            _at(section, f"dci.{model}.{key}")
        _at(section, f"mig.{model}")
        _at(section, f"sap.{model}")
    for kind in ("expression", "pose"):
        for key in TRANSFER_KEYS:
            value = _at(section, f"transfer.{kind}").get(key, "missing")
            if value == "missing":
                raise DataError(f"Results key 'tensorial.transfer.{kind}.{key}' is missing.")
            if value is None and key not in ("id_cosine", "class_agreement", "pose_error_deg"):
                raise DataError(f"Results key 'tensorial.transfer.{kind}.{key}' is null.")
    for key in ("model_mm", "mean_face_mm"):
        _at(section, f"reconstruction_3d.{key}")


def _p(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _f(x: Any, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def _answers(s: Mapping[str, Any]) -> list[str]:
    svm = s["latent_svm"]
    lines = ["### The paper's claims, measured", ""]
    if "z0" in svm:
        for code, factor in OWN.items():
            mine = svm["tensorial"][code][factor]["acc"]
            base = svm["z0"]["z0"][factor]["acc"]
            verdict = "beats" if mine > base else "does not beat"
            lines.append(
                f"- **{code} → {factor}:** {_p(mine)} with a linear SVM; it {verdict} Z_0's "
                f"{_p(base)} (chance {_p(svm['tensorial'][code][factor]['chance'])})."
            )
    leak = svm["tensorial"]
    lines.append(
        f"- **Leakage:** expression read from z_id {_p(leak['z_id']['expression']['acc'])}, "
        f"identity from z_exp {_p(leak['z_exp']['identity']['acc'])}, pose from z_exp "
        f"{_p(leak['z_exp']['pose']['acc'])}."
    )
    for kind, t in s["transfer"].items():
        gain = t.get("psnr_gain", {})
        ci = gain.get("ci95", [None, None])
        closer = "closer to" if t["edit_psnr"] > t["noedit_psnr"] else "not closer to"
        lines.append(
            f"- **{kind.capitalize()} transfer** lands {closer} the true render than doing "
            f"nothing: masked PSNR {_f(t['edit_psnr'])} dB vs {_f(t['noedit_psnr'])} dB "
            f"(paired gain {_f(gain.get('mean'))} dB, 95 % CI by identity "
            f"[{_f(ci[0])}, {_f(ci[1])}], {t['pairs']} pairs)."
        )
    pose = s["transfer"].get("pose", {})
    if pose.get("pose_error_deg") is not None and pose.get("noedit_pose_error_deg") is not None:
        lines.append(_pose_answer(pose))
    e = s["transfer"].get("expression", {})
    if "threedmm_psnr" in e:
        lines.append(
            f"- **References on the same scale:** the oracle 3DMM expression edit (true "
            f"coefficients, geometry only, the source's texture) reaches "
            f"{_f(e['threedmm_psnr'])} dB; the true source image itself (no edit, perfect "
            f"reconstruction) {_f(e.get('source_psnr'))} dB for expression and "
            f"{_f(s['transfer'].get('pose', {}).get('source_psnr'))} dB for pose."
        )
    r = s["reconstruction_3d"]
    lines.append(
        f"- **3D shape:** {_f(r['model_mm'])} mm mean vertex error after similarity alignment, "
        f"against {_f(r['mean_face_mm'])} mm for the mean face."
    )
    return lines + [""]


def tensorial_lines(s: Mapping[str, Any]) -> list[str]:
    """The report's tensorial section, from a validated ``tensorial`` dict."""
    lines = ["## The tensorial model (second paper)", ""]
    lines += [f"Unseen synthetic identities: {s.get('test_faces', '?')} faces of "
              f"{s.get('test_identities', '?')} people.", ""]  # fmt: skip
    lines += _answers(s)
    lines += ["### Table 1: linear SVM (10-fold) from each code", ""]
    rows = []
    for model, codes in s["latent_svm"].items():
        for code, facs in codes.items():
            rows.append([model, code] + [
                f"{_p(facs[f]['acc'])} (chance {_p(facs[f]['chance'])})" for f in FACTORS
            ])  # fmt: skip
    lines += _table(["model", "code", *FACTORS], rows)
    lines += ["### Disentanglement scores (face codes)", ""]
    rows = [[m, _f(d["disentanglement"]), _f(d["completeness"]), _f(d["informativeness"]),
             _f(s["mig"][m]), _f(s["sap"][m])] for m, d in s["dci"].items()]  # fmt: skip
    lines += _table(["model", "DCI D", "DCI C", "DCI I", "MIG", "SAP"], rows)
    lines += ["### Edits against the true render", ""]
    rows = []
    for kind, t in s["transfer"].items():
        rows.append([kind, f"{_f(t['edit_psnr'])} / {_f(t['noedit_psnr'])}",
                     f"{_f(t['edit_ssim'], 3)} / {_f(t.get('noedit_ssim'), 3)}",
                     f"{_f(t['id_cosine'], 3)} / {_f(t.get('truth_id_cosine'), 3)}",
                     f"{_p(t['class_agreement'])} / {_p(t.get('noedit_class_agreement'))} / "
                     f"{_p(t.get('truth_class_agreement'))}",
                     f"{_f(t['pose_error_deg'], 1)} / {_f(t.get('noedit_pose_error_deg'), 1)} / "
                     f"{_f(t.get('truth_pose_error_deg'), 1)}"])  # fmt: skip
    lines += _table(["edit", "masked PSNR dB edit / no edit", "SSIM edit / no edit",
                     "ID cos to source: edit / truth", "target class: edit / no edit / truth",
                     "pose error ° (landmark judge): edit / no edit / truth"],
                    rows)  # fmt: skip
    judge = (s.get("judges") or {}).get("pose")
    if isinstance(judge, Mapping) and isinstance(judge.get("floor"), Mapping):
        fl = judge["floor"]
        lines.append(
            f"- Pose judge: {judge.get('name', '?')}, trained on {judge.get('train_faces', '?')} "
            f"rendered TRAIN faces. On {fl.get('faces', '?')} true renders of unseen people "
            f"its landmarks are {_f(fl.get('landmark_px'), 2)} px off and its pose "
            f"{_f(fl.get('pose_deg'), 1)}° off; the 5-point pose model alone, on the exact "
            f"landmarks, is {_f(fl.get('pose_deg_exact_landmarks'), 1)}° off."
        )
    for kind, t in s["transfer"].items():
        if t.get("self_pose_error_deg") is not None:
            lines.append(
                f"- {kind.capitalize()} transfer, the model's own encoder reading of the pose "
                f"(self-consistency, not a judge): {_f(t['self_pose_error_deg'], 1)}° edit / "
                f"{_f(t.get('noedit_self_pose_error_deg'), 1)}° no edit / "
                f"{_f(t.get('truth_self_pose_error_deg'), 1)}° truth."
            )
    for factor, it in s.get("interpolation", {}).items():
        watch = "target class" if factor == "expression" else "source class"
        ref = "source" if factor == "expression" else "target"
        lines.append(
            f"- Interpolating {factor} (α = 0, 0.5, 1; {it['pairs']} pairs): "
            f"p({watch}) {_ends(it['class_prob'])}; ID cosine to the {ref} "
            f"{_ends(it['id_cosine'])}."
        )
    return lines + [""]


def _pose_answer(t: Mapping[str, Any]) -> str:
    """How far the pose edit turns the head, as a share of the turn it had to make."""
    edit, before, floor = (
        t["pose_error_deg"],
        t["noedit_pose_error_deg"],
        t.get("truth_pose_error_deg"),
    )
    gain = t.get("pose_gain_deg") or {}
    ci = gain.get("ci95", [None, None])
    needed = before - floor if floor is not None else None
    share = f" ({_p((before - edit) / needed)} of the way to the judge's floor)" if needed else ""
    moved = "turns" if ci[0] is not None and ci[0] > 0 else "does not measurably turn"
    return (
        f"- **Pose transfer {moved} the head toward the driver's pose** by the landmark judge: "
        f"{_f(edit, 1)}° from the target rotation after the edit, {_f(before, 1)}° without it "
        f"(paired gain {_f(gain.get('mean'), 1)}°, 95 % CI by identity [{_f(ci[0], 1)}, "
        f"{_f(ci[1], 1)}]){share}; on the true renders the judge is {_f(floor, 1)}° off."
    )


def _ends(values: Sequence[float]) -> str:
    """First, middle and last value of a curve (``–`` without a judge)."""
    if not values:
        return "–"
    return " → ".join(_f(values[i]) for i in (0, len(values) // 2, len(values) - 1))
