"""Typed configuration of an IPD-FER run (model, losses, optimisation, data).

Every field has the paper's value as its default where the paper gives one
(Section 4.2): Adam at lr 1e-4 decayed ×0.1 every 10 epochs for 30 epochs,
batch 32, 112×112 faces, λ = (0.001, 0.001, 1, 10) and β = (0.5, 1).
YAML presets in ``facefactors/configs/`` override some of them, and
``--set section.key=value`` overrides those. The config is saved as
``config.yaml`` in the run folder and inside every checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from facefactors.constants import CANONICAL_CLASSES, DECODER_NORMS, NEUTRAL, NUM_POSE_BINS
from facefactors.devices import check_device
from facefactors.errors import ConfigError

Variant = Literal["baseline", "id", "ipd"]
Schedule = Literal["alternating", "joint"]

# The seven basic expressions of RAF-DB/FERPlus/AffectNet (canonical order, no contempt).
SEVEN_CLASSES: list[str] = list(CANONICAL_CLASSES[:7])


@dataclass
class ModelConfig:
    """Networks of the model.

    Attributes:
        variant: ``baseline`` (E_exp + C_exp, cross-entropy only), ``id`` (ID-FER:
            no E_pose/C_p, f_{i-p} := f_id; with a class list without neutral it
            is the paper's CK+ no-pose mode) or ``ipd`` (the full model).
        backbone: encoder/discriminator family for ``facefactors.nets.create_backbone``.
        width: first-stage channels of the backbones (64 = ResNet-18).
        embedding_dim: feature size; None means the backbone's natural size (8·width).
        id_checkpoint: face-recognition weights loaded into E_id (= N), E_pose,
            E_exp and D; None starts them from random weights.
        init_checkpoint: an earlier IPD-FER run's ``checkpoints/last.pt`` (every
            network it shares with this model) or ``model.pt`` export (E_exp +
            C_exp) loaded after ``id_checkpoint``, before training: the paper's
            SFEW model is fine-tuned from its RAF-DB one. Classes must match.
        decoder_channels: channels of the decoder's last (full-resolution) stage;
            each coarser stage doubles them, capped at 512 (16 gives 256, 128, 64,
            32, 16; the decoder dominates the step cost, ~4× per doubling).
        decoder_start_norm: normalisation after the first 1×1 → s×s transpose conv:
            ``instance`` (the paper's stage as written; it removes each channel's mean
            and scale over the s×s map, so the decoder cannot follow the size of the
            summed feature) or ``none`` (the presets; see docs/ipd_findings.md §4).
            Checkpoints without the key were trained with ``instance``.
        decoder_norm: normalisation of the decoder's other four stages and of its
            residual blocks: ``instance`` (the paper's §4.2, and what checkpoints
            without the key used), ``batch`` (the synthetic presets: on validation
            identities it reconstructs 1.8 dB better at the same budget, because
            InstanceNorm pins each channel's spatial mean and the decoder cannot carry
            a global colour; docs/ipd_findings.md §5) or ``none``.
        decoder_colour_grid: 0 (the paper's decoder, and checkpoints without the
            key) or g > 0: a colour path outside the paper, a linear map of the
            summed feature to a g×g RGB map added before the decoder's tanh, so a
            global colour (the background's hue) need not be learned through five
            stages (docs/ipd_findings.md §9). It must divide ``data.size``.
        classes: expression classes (canonical names) in model output order; None
            takes the dataset's (for synthetic faces: the seven basic expressions,
            no contempt, like RAF-DB).
        pose_bins: number of pose classes K_P (|yaw| bins).
    """

    variant: Variant = "ipd"
    backbone: str = "resnet18"
    width: int = 64
    embedding_dim: int | None = None
    id_checkpoint: str | None = None
    init_checkpoint: str | None = None
    decoder_channels: int = 16
    decoder_start_norm: str = "instance"
    decoder_norm: str = "instance"
    decoder_colour_grid: int = 0
    classes: list[str] | None = None
    pose_bins: int = NUM_POSE_BINS


@dataclass
class LossConfig:
    """Loss weights (Eqs. 11, 12) and on/off switches for the Table 9 ablation.

    A loss is computed only when its switch is on and its weight is non-zero.
    ``use_discriminator: false`` removes D entirely: no phase 2, no L_fneu/L_fexp.

    ``true_neutral`` is a diagnostic outside the paper, for synthetic faces only: the
    neutral term of L_recon scores x̂_{i-p} against the true neutral face of every
    input (same person, pose, light and background), not only of neutral inputs.
    It asks f_id + f_pose to carry all appearance, so that f_exp need only add the
    expression (docs/ipd_findings.md §10).
    """

    lambda_fneu: float = 0.001
    lambda_fexp: float = 0.001
    lambda_id: float = 1.0
    lambda_recon: float = 10.0
    beta_cos: float = 0.5
    beta_conf: float = 1.0
    use_cos: bool = True
    use_conf: bool = True
    use_id: bool = True
    use_recon: bool = True
    use_discriminator: bool = True
    true_neutral: bool = False

    def active(self, name: Literal["cos", "conf", "id", "recon", "fneu", "fexp"]) -> bool:
        """Whether loss ``name`` contributes (switch on and weight non-zero)."""
        switch, weight = {
            "cos": (self.use_cos, self.beta_cos),
            "conf": (self.use_conf, self.beta_conf),
            "id": (self.use_id, self.lambda_id),
            "recon": (self.use_recon, self.lambda_recon),
            "fneu": (self.use_discriminator, self.lambda_fneu),
            "fexp": (self.use_discriminator, self.lambda_fexp),
        }[name]
        return bool(switch) and weight != 0.0


@dataclass
class TrainConfig:
    """Optimisation, logging and speed options.

    Attributes:
        seed: seeds weights, data order (with the epoch) and augmentation.
        schedule: ``alternating`` runs Algorithm 1's three phases as written;
            ``joint`` shares one encoder pass between phases 1 and 3 (Eq. 12; see
            ``facefactors.ipd.phases``), which is cheaper.
        epochs: number of passes over the training split (raised by ``min_steps``).
        min_steps: train at least this many optimiser steps: ``epochs`` and
            ``lr_step_epochs`` are stretched by the same factor when the epochs
            fall short, so a small dataset still trains a sensible length (see
            :mod:`facefactors.training.budget`; the saved config shows the result).
            None: the epochs as given.
        max_steps: stop after this many steps in total (None: run all epochs);
            with ``min_steps`` equal to it, the budget is exactly that many steps;
            below ``min_steps`` it wins (a capped run, reported as stopped early).
        batch_size: images per step per process.
        lr, betas, weight_decay: Adam settings shared by every phase's optimiser.
        decoder_lr: G_dec's learning rate inside its phase's Adam (a parameter
            group of its own); None: ``lr``, as in the paper. The encoders and
            classifiers keep ``lr`` (see docs/ipd_findings.md §7).
        lr_step_epochs, lr_gamma: StepLR decay (×gamma every ``lr_step_epochs``).
        hflip: random horizontal flips (labels are invariant: pose bins use |yaw|).
        bf16: bfloat16 autocast for the forward passes (CPU and CUDA).
        channels_last: NHWC memory format for images and conv weights.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:n]``.
        threads: torch intra-op threads (None: torch's default).
        num_workers: DataLoader worker processes.
        log_every: steps between ``metrics.jsonl`` lines.
        sample_every: steps between image grids under ``samples/`` (0: never).
        sample_count: faces (rows) per image grid.
        validate: compute validation accuracy at the end of each epoch.
    """

    seed: int = 0
    schedule: Schedule = "alternating"
    epochs: int = 30
    min_steps: int | None = None
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-4
    decoder_lr: float | None = None
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    lr_step_epochs: int = 10
    lr_gamma: float = 0.1
    hflip: bool = True
    bf16: bool = False
    channels_last: bool = False
    device: str = "auto"
    threads: int | None = None
    num_workers: int = 0
    log_every: int = 10
    sample_every: int = 500
    sample_count: int = 8
    validate: bool = True


@dataclass
class DataConfig:
    """Where the images come from.

    Attributes:
        source: ``synth`` renders procedural faces; any other name (``prepared``,
            ``rafdb``, ``ferplus``, ...) is read from ``root`` by ``facefactors.data``.
            A ``root`` given with ``source: synth`` is never ignored: a folder written
            by ``facefactors prepare`` makes the source ``prepared`` (said on stderr
            and saved in ``config.yaml``); any other folder is an error naming both
            keys (:func:`resolve_data_source`).
        root: dataset folder for non-synthetic sources.
        fold: test fold of a cross-validated dataset (samples of split ``all``:
            CK+, a flat ``folder``); training uses the other folds. Required for
            such datasets, ignored (must stay null) for datasets with splits.
        folds: number of person-independent folds to deal the subjects of a
            dataset of split ``all`` into when it has no folds of its own (a flat
            folder prepared with subject ids); ``reproduce --folds K`` sets it.
            The rule is :func:`facefactors.data.subjects.subject_folds`.
        val_every: validation held out of training when the dataset has no
            ``val`` split: every n-th training subject (whole people), or every
            n-th image when the dataset has no subject ids (validation then shares
            people with training, and the log and report say so); 0 holds none
            out (the paper's protocol: the full training split is trained on).
        size: square image size fed to every network (112 or 64; divisible by 16).
        synth_identities: training identities rendered (validation ones included).
        synth_per_identity: images per identity.
        synth_val_identities: training identities held out for validation (never
            the test split: its identities are only for final evaluation); at least
            1 for synthetic data.
        synth_seed: seed of the synthetic generator.
        synth_intensity: range of the expression (AU prototype) intensity: the
            difficulty knob of the synthetic task, calibrated on validation identities.
        synth_cache: folder where rendered synthetic faces are kept and reused
            across runs (None: render in memory for this run only).
    """

    source: str = "synth"
    root: str | None = None
    fold: int | None = None
    folds: int | None = None
    val_every: int = 10
    size: int = 112
    synth_identities: int = 200
    synth_per_identity: int = 40
    synth_val_identities: int = 20
    synth_seed: int = 0
    synth_intensity: list[float] = field(default_factory=lambda: [0.5, 1.0])
    synth_cache: str | None = None


@dataclass
class IPDConfig:
    """A complete IPD-FER training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)


def validate_config(cfg: IPDConfig) -> IPDConfig:
    """Check cross-field constraints that the type checks in ``from_dict`` cannot.

    Raises:
        ConfigError: naming the offending key.
    """
    m, t, d = cfg.model, cfg.train, cfg.data
    if m.classes is not None:
        unknown = [c for c in m.classes if c not in CANONICAL_CLASSES]
        if unknown:
            raise ConfigError(
                f"Config key 'model.classes' has unknown class '{unknown[0]}'; "
                f"valid names: {', '.join(CANONICAL_CLASSES)}."
            )
        if len(set(m.classes)) != len(m.classes) or len(m.classes) < 2:
            raise ConfigError("Config key 'model.classes' must list at least two distinct classes.")
    if d.size % 16 or d.size < 32:
        raise ConfigError(
            f"Config key 'data.size' must be a multiple of 16 and at least 32, got {d.size}."
        )
    for key, kind in (
        ("decoder_start_norm", m.decoder_start_norm),
        ("decoder_norm", m.decoder_norm),
    ):
        if kind not in DECODER_NORMS:
            raise ConfigError(
                f"Config key 'model.{key}' must be one of {', '.join(DECODER_NORMS)}, got '{kind}'."
            )
    if m.decoder_colour_grid < 0 or d.size % max(m.decoder_colour_grid, 1):
        raise ConfigError(
            "Config key 'model.decoder_colour_grid' must be 0 or divide data.size "
            f"({d.size}), got {m.decoder_colour_grid}."
        )
    positive = {
        "model.width": m.width,
        "model.decoder_channels": m.decoder_channels,
        "model.pose_bins": m.pose_bins,
        "train.epochs": t.epochs,
        "train.batch_size": t.batch_size,
        "train.lr_step_epochs": t.lr_step_epochs,
        "train.log_every": t.log_every,
        "data.synth_identities": d.synth_identities,
        "data.synth_per_identity": d.synth_per_identity,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"Config key '{key}' must be at least 1, got {value}.")
    lo_hi = d.synth_intensity
    if len(lo_hi) != 2 or not 0.0 <= lo_hi[0] <= lo_hi[1]:
        raise ConfigError(
            f"Config key 'data.synth_intensity' must be [low, high] with 0 <= low <= high, got {lo_hi}."
        )
    check_device(t.device, "Config key 'train.device'")
    optional = {
        "train.min_steps": t.min_steps,
        "train.max_steps": t.max_steps,
        "train.threads": t.threads,
    }
    if d.val_every < 0:
        raise ConfigError(f"Config key 'data.val_every' must be at least 0, got {d.val_every}.")
    if d.fold is not None and d.fold < 0:
        raise ConfigError(f"Config key 'data.fold' must be at least 0 (or null), got {d.fold}.")
    if d.folds is not None and d.folds < 2:
        raise ConfigError(f"Config key 'data.folds' must be at least 2 (or null), got {d.folds}.")
    if d.folds is not None and d.fold is not None and d.fold >= d.folds:
        raise ConfigError(
            f"Config key 'data.fold' is {d.fold} but data.folds is {d.folds}: folds count from 0."
        )
    for key, value in optional.items():
        if value is not None and value < 1:
            raise ConfigError(f"Config key '{key}' must be at least 1 (or null), got {value}.")
    for key, value in {
        "train.num_workers": t.num_workers,
        "train.sample_every": t.sample_every,
        "train.sample_count": t.sample_count,
    }.items():
        if value < 0:
            raise ConfigError(f"Config key '{key}' must be at least 0, got {value}.")
    for name in (
        "lambda_fneu",
        "lambda_fexp",
        "lambda_id",
        "lambda_recon",
        "beta_cos",
        "beta_conf",
    ):
        if getattr(cfg.loss, name) < 0:  # a negative weight would flip the loss's sign
            raise ConfigError(f"Config key 'loss.{name}' must be at least 0.")
    if cfg.loss.true_neutral and d.source != "synth":
        raise ConfigError(
            "Config key 'loss.true_neutral' needs synthetic faces (data.source: synth), "
            f"the only data with a true neutral face for every image; got '{d.source}'."
        )
    if t.lr <= 0:
        raise ConfigError(f"Config key 'train.lr' must be positive, got {t.lr}.")
    if t.decoder_lr is not None and t.decoder_lr <= 0:
        raise ConfigError(f"Config key 'train.decoder_lr' must be positive, got {t.decoder_lr}.")
    if len(t.betas) != 2:
        raise ConfigError("Config key 'train.betas' must hold two numbers.")
    if not 0 <= d.synth_val_identities < d.synth_identities:
        raise ConfigError(
            "Config key 'data.synth_val_identities' must be at least 0 and below "
            f"data.synth_identities ({d.synth_identities})."
        )
    resolve_data_source(d)
    if d.source == "synth" and d.synth_val_identities == 0:
        raise ConfigError(
            "Config key 'data.synth_val_identities' must be at least 1: validation needs "
            "held-out identities, and with none it would run on training images."
        )
    return cfg


_NOTED_ROOTS: set[str] = set()


def resolve_data_source(d: DataConfig) -> str:
    """Make ``data.source`` agree with ``data.root``: never train on faces the root does not hold.

    A root that ``source: synth`` would ignore (the preset default, with the user's
    ``--set data.root=PREP`` and no ``data.source``) is read when it is a folder
    written by ``facefactors prepare`` (its ``prepared.json`` or ``annotations.csv``
    says so unambiguously): the source becomes ``prepared`` in place, so the saved
    config shows the data actually used, and a note says so on stderr. Any other
    root is an error: guessing a dataset format from a raw folder could read the
    wrong protocol.

    Returns:
        The source in use.

    Raises:
        ConfigError: ``data.root`` is set, ``data.source`` is ``synth`` and the root
            is not a prepared folder (naming both keys).
    """
    from facefactors.data.prepared import MANIFEST

    if d.source != "synth" or d.root is None:
        return d.source
    root = Path(d.root).expanduser()
    marker = next((root / n for n in (MANIFEST, "annotations.csv") if (root / n).is_file()), None)
    if marker is None:
        raise ConfigError(
            f"Config key 'data.root' is {d.root} but 'data.source' is 'synth', which renders "
            "faces and reads no folder; set data.source to the loader of that folder "
            "(prepared, folder, csv, rafdb, ckplus7, ...) or drop data.root."
        )
    d.source = "prepared"
    if str(root) in _NOTED_ROOTS:  # reproduce builds one config per run: say it once
        return d.source
    _NOTED_ROOTS.add(str(root))
    print(
        f"note: data.source set to 'prepared' because data.root {d.root} holds {marker.name} "
        "(a folder written by `facefactors prepare`).",
        file=sys.stderr,
    )
    return d.source


def neutral_index(classes: list[str]) -> int:
    """Index c of the neutral class: its position, or K (an extra output) if absent."""
    return classes.index(NEUTRAL) if NEUTRAL in classes else len(classes)
