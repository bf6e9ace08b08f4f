"""``facefactors demo``: the main job, offline on the embedded synthetic faces.

In order it (1) renders synthetic train and test splits with disjoint identities,
(2) pretrains the identity encoder on the train identities, (3) trains
``baseline``, ``id`` and ``ipd`` with the quick presets, (4) trains the tensorial
model and its Z_0 baseline, (5) evaluates everything on the test identities and
(6) writes ``report.md`` and ``results.json``.

Every step is resumable: a finished step leaves its output (``backbone.pt``,
``model.pt``, the cached renders) and is skipped on a rerun of the same folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from facefactors.config import load_config
from facefactors.experiments.jobs import Job, run_finished, run_jobs

METHODS = ("baseline", "id", "ipd")


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults (3 seeds per method) fit in 30 minutes on 2 CPU cores.

    Attributes:
        seeds: training seeds per method (best and mean ± std are reported).
        test_identities, test_per_identity: the synthetic test split.
        methods: which variants to train.
        pretrain_overrides: ``--set`` overrides of the ``pretrain_synth_quick`` preset.
        train_overrides: overrides applied to every ``<method>_synth_quick`` preset.
        tensorial: also train the tensorial model and Z_0 and report them.
        tensorial_overrides: overrides of ``tensorial_synth_quick`` and ``z0_synth_quick``.
        pose_judge_steps: training steps of the landmark head-pose judge of the edits.
        preset: the IPD-FER presets are ``<method>_<preset>`` (``synth_quick``, or
            ``synth_full`` for the paper's 30-epoch schedule).
        variants: extra methods, label → [base method, override, ...], e.g.
            ``{"ipd-no-cos": ["ipd", "loss.use_cos=false"]}`` (the Table 9 ablation);
            a label is then one of ``methods``.
        jobs: trainings run side by side in worker processes, each on its share of
            the cores (1: one after another in this process).
    """

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    test_identities: int = 40
    test_per_identity: int = 14
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    pretrain_overrides: list[str] = field(default_factory=list)
    train_overrides: list[str] = field(default_factory=list)
    tensorial: bool = True
    tensorial_overrides: list[str] = field(default_factory=list)
    pose_judge_steps: int = 1500
    preset: str = "synth_quick"
    variants: dict[str, list[str]] = field(default_factory=dict)
    jobs: int = 2


def _log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pretrain_step(out: Path, overrides: list[str]) -> Path:
    """Identity encoder on the synthetic train identities → ``out/pretrain/backbone.pt``."""
    from facefactors.recognition.train import PretrainConfig, pretrain

    path = out / "pretrain" / "backbone.pt"
    if path.is_file():
        _log(f"identity encoder: reusing {path}")
        return path
    cfg = load_config(PretrainConfig, "pretrain_synth_quick", overrides)
    # A run killed before its end continues from its last checkpoint.
    resume = (out / "pretrain" / "checkpoints" / "last.pt").is_file()
    result = pretrain(cfg, out / "pretrain", resume=resume)
    v = result.verification
    _log(f"identity encoder: verification acc {v['acc']:.3f}, AUC {v['auc']:.3f}")
    return result.backbone_path


def method_config(
    method: str, seed: int, backbone: Path, cache: Path, overrides: list[str],
    dcfg: DemoConfig | None = None,
):  # fmt: skip
    """The preset of ``method`` (or of a variant's base) with the demo's E_id, seed and cache."""
    from facefactors.errors import ConfigError
    from facefactors.ipd.config import IPDConfig

    dcfg = dcfg or DemoConfig()
    base, own = method, []
    if method in dcfg.variants:
        base, *own = dcfg.variants[method]
    if base not in METHODS:
        raise ConfigError(
            f"Demo method '{method}' is not one of {', '.join(METHODS)} nor a --variant label."
        )
    fixed = [
        f"model.id_checkpoint={backbone}",
        f"train.seed={seed}",
        f"data.synth_cache={cache}",
    ]
    return load_config(IPDConfig, f"{base}_{dcfg.preset}", fixed + list(overrides) + own)


# Relative training times of the quick presets (the demo's longest-first order;
# the tensorial model's and Z_0's are in experiments.demo_tensorial.COST).
COST = {"ipd": 7.0, "id": 6.0, "baseline": 1.0}


def train_jobs(
    out: Path, dcfg: DemoConfig, backbone: Path
) -> tuple[dict[str, dict[int, Path]], list[Job]]:
    """The IPD-FER trainings still to do; returns (method → seed → checkpoint, jobs).

    Finished runs are reused, interrupted ones resume (:func:`run_finished`).
    """
    from facefactors.ipd.data import build_datasets
    from facefactors.ipd.train import train

    runs: dict[str, dict[int, Path]] = {}
    jobs: list[Job] = []
    warmed: set[str] = set()
    for method in dcfg.methods:
        for seed in dcfg.seeds:
            run = out / "runs" / f"{method}-seed{seed}"
            ckpt = run / "checkpoints" / "last.pt"
            runs.setdefault(method, {})[seed] = ckpt
            if run_finished(run):
                _log(f"{method} seed {seed}: reusing {run}")
                continue
            cfg = method_config(method, seed, backbone, out / "cache", dcfg.train_overrides, dcfg)
            data_key = repr(cfg.data) + str(cfg.loss.true_neutral)
            if data_key not in warmed:  # render the faces once, before the workers read them
                build_datasets(cfg.data, cfg.model.classes, cfg.loss.true_neutral)
                warmed.add(data_key)
            base = dcfg.variants.get(method, [method])[0]
            jobs.append(
                Job(f"{method} seed {seed}", train, {"cfg": cfg, "out": run,
                    "resume": ckpt.is_file()}, COST[base])
            )  # fmt: skip
    return runs, jobs


def run_demo(out: str | Path, dcfg: DemoConfig | None = None) -> Path:
    """Run the whole demo into ``out``; returns the path of ``report.md``."""
    from facefactors.experiments.report import evaluate_and_report
    from facefactors.experiments.testset import render_test_set

    dcfg = dcfg or DemoConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    # Steps a rerun reuses: their training time is not in this run's timings.
    reused = sorted(
        str(p.parent.relative_to(out))
        for p in [out / "pretrain" / "backbone.pt", *(out / "runs").glob("*/model.pt")]
        if p.is_file()
    )

    for method in dcfg.methods:  # every preset and override is checked before any training
        method_config(method, dcfg.seeds[0], out / "pretrain" / "backbone.pt", out / "cache",
                      dcfg.train_overrides, dcfg)  # fmt: skip
    backbone = pretrain_step(out, dcfg.pretrain_overrides)
    timings["pretrain_s"] = time.perf_counter() - t0

    tick = time.perf_counter()
    runs, jobs = train_jobs(out, dcfg, backbone)
    if dcfg.tensorial:
        from facefactors.experiments.demo_tensorial import tensorial_jobs

        jobs += tensorial_jobs(out, backbone, dcfg.seeds[0], dcfg.tensorial_overrides, _log)
    seconds = run_jobs(jobs, dcfg.jobs, _log)
    timings["train_s"] = time.perf_counter() - tick
    timings |= {f"{lbl.replace(' ', '_')}_s": sec for lbl, sec in seconds.items()}

    tick = time.perf_counter()
    # The report's settings table shows the main method's config (IPD-FER when trained).
    main = "ipd" if "ipd" in dcfg.methods else dcfg.methods[0]
    ref = method_config(main, dcfg.seeds[0], backbone, out / "cache", dcfg.train_overrides, dcfg)
    classes = list(ref.model.classes) if ref.model.classes else None
    from facefactors.ipd.config import SEVEN_CLASSES
    from facefactors.synth import MODEL_VERSION

    classes = classes or list(SEVEN_CLASSES)
    d = ref.data
    lo, hi = d.synth_intensity
    key = f"test-{dcfg.test_identities}x{dcfg.test_per_identity}-{d.size}px-seed{d.synth_seed}"
    key += f"-int{lo:g}-{hi:g}"
    test = render_test_set(
        dcfg.test_identities,
        dcfg.test_per_identity,
        d.size,
        d.synth_seed,
        classes,
        cache=out / "cache" / f"{key}-v{MODEL_VERSION}-{len(classes)}cls.pt",
        intensity=(lo, hi),
    )
    _log(f"test split: {len(test)} faces of {dcfg.test_identities} unseen identities")
    extra: dict = {"notes": []}
    if reused:
        extra["notes"].append(
            f"Reused from an earlier run of this folder (trained then, not timed here): "
            f"{', '.join(reused)}."
        )
    if len(jobs) > 1 and dcfg.jobs > 1:
        extra["notes"].append(
            f"{len(jobs)} trainings ran {min(dcfg.jobs, len(jobs))} at a time in worker "
            "processes, each on its share of the cores (demo --jobs): settings.timings_s gives "
            "each run's own wall time (<run>_seed<N>_s) and train_s the wall time of them all."
        )
    if dcfg.tensorial:
        from facefactors.experiments.demo_tensorial import evaluate_tensorial_runs

        baseline = runs.get("baseline", {}).get(dcfg.seeds[0])
        section, plots, t_times = evaluate_tensorial_runs(
            out,
            backbone,
            baseline.parent.parent / "model.pt" if baseline is not None else None,
            seed=dcfg.seeds[0],
            overrides=dcfg.tensorial_overrides,
            test_identities=dcfg.test_identities,
            test_per_identity=dcfg.test_per_identity // 2,
            judge_steps=dcfg.pose_judge_steps,
            log=_log,
        )
        extra |= {"tensorial": section, "plots": plots}
        timings |= t_times
    report = evaluate_and_report(out, runs, test, ref, dcfg, timings | {"t0": t0}, extra)
    _log(f"report: {report} (total {time.perf_counter() - t0:.0f} s)")
    return report
