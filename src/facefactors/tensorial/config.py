"""Typed configuration of the tensorial model and its losses, with two presets.

``paper()`` is the paper's network (§3.5, Appendix A): 64 × 64 faces,
k_id = 80, k_exp = 15, k_l = 9, so the full projection ``Q_(1)`` is
12,288 × 10,800 (≈133M weights). ``quick()`` is a CPU-sized network for
tests, demos and the synthetic benchmark.

Decisions where the paper is silent (see the field docs for more):

- **Lighting and colour.** ``light_channels = 3`` gives z_l one row of 9 SH
  coefficients per colour channel (27 values), as NFE's Lr/Lg/Lb and our
  synthetic generator's (3, 9) lighting, so coloured lights are representable
  and supervised exactly. The 3-way synthesis keeps the paper's k_l = 9 by
  using the channel mean of z_l (its achromatic part): with all 27 values Q_(1)
  would have 32,400 columns (398M weights). ``light_channels = 1`` is the
  literal 9-value reading (one grey light, colour left to the albedo).
- **Normals.** ``normals = "nfe"`` (default) predicts (Nx, Ny) and sets
  Nz = √(ReLU(1 − Nx² − Ny²) + ε), as NFE, the architecture the paper follows;
  ε bounds the gradient 1 / (2√u), which plain √ReLU lets explode as
  u = 1 − Nx² − Ny² → 0⁺ (the rim of the visible hemisphere). ``"unit"``
  predicts a 3-vector and normalises it (always unit length, can face away
  at silhouettes, where the synthetic normals reach Nz ≈ −0.1).
- **Albedo, mask, background** end in a sigmoid: [0, 1] like the renderer's
  maps (NFE used Threshold / HardTanh). Inside the decoders the
  nonlinearities are NFE's: Threshold for albedo, mask and background, Tanh
  for normals.
- **Q and B** are full unbiased linear layers by default (``q_rank = b_rank =
  None``). A rank r factors the matricised core as ``U (k_x × r) · V (r × K)``:
  still linear in the Khatri–Rao feature, so Eqs. 2–5 keep their form, but the
  core's mode-1 rank is capped at r. A deviation for memory-bound settings;
  neither preset uses it.
- **Range.** Albedo, image, mask and background live in linear [0, 1]
  units and shading in linear irradiance units, like the synthetic renderer (``(image + 1) / 2 = clip(albedo ·
  shading · mask + background · (1 − mask))``); the reconstruction ``x̂`` is
  mapped back to [-1, 1] to be compared with the input. The frontal image and
  normals from Q are raw linear outputs (Q is an unbiased linear projection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from facefactors.config import load_config
from facefactors.constants import CANONICAL_CLASSES
from facefactors.devices import check_device
from facefactors.errors import ConfigError

NormalParam = Literal["nfe", "unit"]
Variant = Literal["tensorial", "z0"]

# Sizes of the synthetic generator's pseudo ground truth (facefactors.synth):
# K_SHAPE + K_ALBEDO identity coefficients, 2 × 18 per-side AU activations,
# and the fixed vertex subsample reported as ``vertices``.
SYNTH_ID_COEFFS = 47
SYNTH_EXP_COEFFS = 36
SYNTH_VERTICES = 522


@dataclass
class TensorialModelConfig:
    """Networks of the tensorial model, its Z_0 baseline and the BEGAN discriminator.

    Attributes:
        variant: ``tensorial`` (the paper's model) or ``z0`` (the plain
            adversarial autoencoder with one unstructured latent, Table 1's Z_0).
        image_size: input height = width, divisible by 8 (three 2× poolings).
        enc_channels: the three 5 × 5 conv stages (Appendix A: 96, 48, 24);
            the decoders mirror them.
        threshold: NFE's ``Threshold(0, value)`` nonlinearity: x if x > 0 else value.
        code_dim: the intermediate code z_i (128, squashed by a sigmoid as NFE).
        z_b, z_m: background and mask codes.
        k_l: SH coefficients per channel (second order: 9).
        light_channels: 3 (one SH row per colour) or 1 (shared grey light).
        k_p: the pose code, a 3 × 3 matrix before its projection onto SO(3).
        k_id, k_exp: identity and expression codes; k_exp · k_id must be
            divisible by 3 (the rotation reshapes it to 3 rows).
        normals: ``nfe`` or ``unit`` (module docstring).
        normal_eps: ε under NFE's square root.
        skip_connections: mask/background decoders concatenate the encoder's
            activations after each unpooling (Appendix A); off = unpooling only.
        q_rank, b_rank: None for full projections, else the factored rank.
        num_vertices: vertices predicted by B (3 coordinates each): the
            synthetic faces' fixed subsample (522); the paper's 3DMM had 9,375.
        vertex_unit_mm: B predicts coordinates in this unit and the output is
            scaled back to mm, so B's weights start at a sane scale.
        id_coeff_dim, exp_coeff_dim: outputs of the fc heads of Eqs. 11, 10
            (the paper's 3DMM: 157 and 28; our synthetic faces: 47 and 36).
        z0_dim: Z_0 baseline latent; None = the size of the structured face
            codes (z_l + z_p + z_id + z_exp), a like-for-like capacity.
        disc_channels: BEGAN discriminator stage widths (one stride-2 stage each).
        disc_code: BEGAN discriminator bottleneck (the reference uses 64).
    """

    variant: Variant = "tensorial"
    image_size: int = 64
    enc_channels: list[int] = field(default_factory=lambda: [96, 48, 24])
    threshold: float = 1e-6
    code_dim: int = 128
    z_b: int = 128
    z_m: int = 128
    k_l: int = 9
    light_channels: int = 3
    k_p: int = 9
    k_id: int = 80
    k_exp: int = 15
    normals: NormalParam = "nfe"
    normal_eps: float = 1e-6
    skip_connections: bool = True
    q_rank: int | None = None
    b_rank: int | None = None
    num_vertices: int = SYNTH_VERTICES
    vertex_unit_mm: float = 100.0
    id_coeff_dim: int = SYNTH_ID_COEFFS
    exp_coeff_dim: int = SYNTH_EXP_COEFFS
    z0_dim: int | None = None
    disc_channels: list[int] = field(default_factory=lambda: [64, 128, 192])
    disc_code: int = 64

    @property
    def k_x(self) -> int:
        """Pixels × channels of an image, the rows of Q_(1)."""
        return 3 * self.image_size * self.image_size

    @property
    def k_2way(self) -> int:
        """Size of z_exp ⊙ z_id."""
        return self.k_exp * self.k_id

    @property
    def k_3way(self) -> int:
        """Size of z_l ⊙ z_exp ⊙ z_id, the columns of Q_(1)."""
        return self.k_l * self.k_exp * self.k_id

    @property
    def z0_size(self) -> int:
        """The Z_0 baseline's latent size."""
        if self.z0_dim is not None:
            return self.z0_dim
        return self.k_l * self.light_channels + self.k_p + self.k_id + self.k_exp


@dataclass
class TensorialLossConfig:
    """Weights and switches of every loss term (Eqs. 8–14 and NFE's constraints).

    A term contributes only when its ``use_*`` switch is on and its
    ``lambda_*`` weight is non-zero (:meth:`active`). The paper gives no
    weights: E_recon has weight 1 (Eq. 8); NFE's constraint weights are taken
    relative to NFE's reconstruction weight of 4 (normals 0.2, smoothness 0.2,
    unit length 5, light 5, albedo TV 0.2, mask 5, mask smoothness 2, all
    divided by 4); the new supervised and multilinear terms start at 1.

    Attributes:
        lambda_*/use_*: one pair per term: ``recon`` (E_recon), ``adv``
            (E_adv), ``veri`` (E_veri), ``pose`` (E_p, Eq. 9), ``exp`` (E_exp,
            Eq. 10), ``id`` (E_id, Eq. 11), ``normal`` (NFE: normals vs pseudo
            ground truth), ``normal_smooth``, ``unit`` (unit-length normals),
            ``light`` (SH vs pseudo ground truth), ``albedo_tv``, ``mask``,
            ``mask_smooth``, ``shape3d`` (E_3d, Eq. 12), ``frontal`` (E_f,
            Eq. 13), ``frontal_normal`` (E_n, Eq. 14).
        pose_on: Eq. 9 compares the raw 9-value code z_p (``code``, as written)
            or its projection R onto SO(3) (``rotation``).
        frontal_yaw_deg: E_f and E_n use samples with |yaw| below this (the
            pseudo ground-truth pose filter of §3.6).
        multilinear_masked: E_f and E_n over the face mask only (off: whole
            image, as the paper).
        shape_unit_mm: vertex errors of E_3d are measured in this unit.
        gamma, lambda_k, k0: BEGAN's diversity ratio, k_t learning rate and
            initial k (the reference: 0.5, 1e-3, 0).
    """

    lambda_recon: float = 1.0
    lambda_adv: float = 0.25
    lambda_veri: float = 0.1
    lambda_pose: float = 1.0
    lambda_exp: float = 1.0
    lambda_id: float = 1.0
    lambda_normal: float = 0.05
    lambda_normal_smooth: float = 0.05
    lambda_unit: float = 1.25
    lambda_light: float = 1.25
    lambda_albedo_tv: float = 0.05
    lambda_mask: float = 1.25
    lambda_mask_smooth: float = 0.5
    lambda_shape3d: float = 1.0
    lambda_frontal: float = 1.0
    lambda_frontal_normal: float = 1.0
    use_recon: bool = True
    use_adv: bool = True
    use_veri: bool = True
    use_pose: bool = True
    use_exp: bool = True
    use_id: bool = True
    use_normal: bool = True
    use_normal_smooth: bool = True
    use_unit: bool = True
    use_light: bool = True
    use_albedo_tv: bool = True
    use_mask: bool = True
    use_mask_smooth: bool = True
    use_shape3d: bool = True
    use_frontal: bool = True
    use_frontal_normal: bool = True
    pose_on: Literal["code", "rotation"] = "code"
    frontal_yaw_deg: float = 15.0
    multilinear_masked: bool = False
    shape_unit_mm: float = 100.0
    gamma: float = 0.5
    lambda_k: float = 1e-3
    k0: float = 0.0

    def weight(self, name: str) -> float:
        """λ of term ``name``."""
        return float(getattr(self, f"lambda_{name}"))

    def active(self, name: str) -> bool:
        """Whether term ``name`` contributes (switch on and weight non-zero)."""
        if not hasattr(self, f"use_{name}"):
            raise ConfigError(f"Unknown tensorial loss term '{name}'.")
        return bool(getattr(self, f"use_{name}")) and self.weight(name) != 0.0


@dataclass
class TensorialOptimConfig:
    """Adam settings shared by the D and G phases (BEGAN's reference: 1e-4, (0.5, 0.999))."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0


@dataclass
class TensorialTrainConfig:
    """The training loop (the same run-folder guarantees as IPD-FER).

    Attributes:
        seed: seeds initialisation and data order (a pure function of (seed, epoch)).
        epochs: passes over the training faces.
        batch_size: faces per process and step.
        max_steps: stop (and checkpoint) after this many steps (None: all epochs).
        log_every: steps between metrics.jsonl lines.
        sample_every: steps between ``samples/`` grids (0: only at the end).
        sample_count: rows of each grid (validation faces).
        validate: reconstruction PSNR on the validation identities after every epoch.
        threads: torch intra-op threads (None: torch's default).
        device: ``auto``, ``cpu`` or ``cuda``.
        bf16: bfloat16 autocast.
        num_workers: data-loader worker processes.
    """

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    max_steps: int | None = None
    log_every: int = 20
    sample_every: int = 0
    sample_count: int = 8
    validate: bool = True
    threads: int | None = None
    device: str = "auto"
    bf16: bool = False
    num_workers: int = 0


@dataclass
class TensorialDataConfig:
    """Training faces: synthetic identities with exact pseudo ground truth, or a
    prepared folder of real faces with the fitted one (``facefactors fit3d``).

    Attributes:
        source: ``synth`` (rendered faces, exact pseudo ground truth) or ``prepared``
            (``root`` is a folder of ``facefactors prepare`` with ``fit3d/`` in it).
        root: the prepared folder (``source: prepared`` only).
        val_every: ``prepared``: every n-th subject (sorted ids) of the training faces
            is held out whole for validation; without subject ids every n-th image
            (said on stderr: validation then shares people with training).
        synth_identities: training identities (the last ``synth_val_identities``
            of them are held out for validation, never trained on).
        synth_per_identity: faces per identity.
        synth_val_identities: held-out validation identities (at least 1).
        synth_seed: the renderer's seed.
        synth_intensity: expression intensity range of the renderer.
        synth_classes: expression classes drawn (the seven basic ones by default,
            as the IPD-FER presets, so one expression classifier serves both).
    """

    source: Literal["synth", "prepared"] = "synth"
    root: str | None = None
    val_every: int = 10
    synth_identities: int = 200
    synth_per_identity: int = 12
    synth_val_identities: int = 20
    synth_seed: int = 0
    synth_intensity: list[float] = field(default_factory=lambda: [1.0, 1.6])
    synth_classes: list[str] = field(default_factory=lambda: list(CANONICAL_CLASSES[:7]))


@dataclass
class TensorialConfig:
    """One tensorial run: model, losses, optimiser, training loop and data.

    ``method`` tells ``facefactors train`` which trainer a preset is for.
    ``verifier_checkpoint`` is V of E_veri: a ``backbone.pt`` from
    ``facefactors pretrain-id`` (or any checkpoint :func:`create_backbone` loads);
    None leaves E_veri out.
    """

    method: Literal["tensorial"] = "tensorial"
    model: TensorialModelConfig = field(default_factory=TensorialModelConfig)
    loss: TensorialLossConfig = field(default_factory=TensorialLossConfig)
    optim: TensorialOptimConfig = field(default_factory=TensorialOptimConfig)
    train: TensorialTrainConfig = field(default_factory=TensorialTrainConfig)
    data: TensorialDataConfig = field(default_factory=TensorialDataConfig)
    verifier_checkpoint: str | None = None


def validate(cfg: TensorialConfig) -> TensorialConfig:
    """Check cross-field constraints.

    Raises:
        ConfigError: naming the offending key.
    """
    m = cfg.model
    if m.image_size <= 0 or m.image_size % 8:
        raise ConfigError(f"model.image_size must be a positive multiple of 8, got {m.image_size}.")
    if len(m.enc_channels) != 3:
        raise ConfigError("model.enc_channels needs exactly three widths (Appendix A: 96, 48, 24).")
    if m.k_2way % 3:
        raise ConfigError(
            f"model.k_exp * model.k_id must be divisible by 3 for the rotation, got {m.k_2way}."
        )
    if m.light_channels not in (1, 3):
        raise ConfigError(f"model.light_channels must be 1 or 3, got {m.light_channels}.")
    if m.k_l != 9:
        raise ConfigError("model.k_l must be 9: the shading is second-order spherical harmonics.")
    if m.k_p != 9:
        raise ConfigError("model.k_p must be 9: the pose code is a 3 x 3 matrix.")
    if m.normals not in ("nfe", "unit"):
        raise ConfigError(f"model.normals must be 'nfe' or 'unit', got {m.normals!r}.")
    if m.variant not in ("tensorial", "z0"):
        raise ConfigError(f"model.variant must be 'tensorial' or 'z0', got {m.variant!r}.")
    for key in ("q_rank", "b_rank"):
        rank = getattr(m, key)
        if rank is not None and rank <= 0:
            raise ConfigError(f"model.{key} must be positive or null, got {rank}.")
    if cfg.loss.pose_on not in ("code", "rotation"):
        raise ConfigError(f"loss.pose_on must be 'code' or 'rotation', got {cfg.loss.pose_on!r}.")
    if not 0.0 <= cfg.loss.k0 <= 1.0:
        raise ConfigError(f"loss.k0 must lie in [0, 1], got {cfg.loss.k0}.")
    t, d = cfg.train, cfg.data
    for key in ("epochs", "batch_size", "log_every", "sample_count"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be at least 1, got {getattr(t, key)}.")
    if t.max_steps is not None and t.max_steps < 1:
        raise ConfigError(f"train.max_steps must be at least 1 or null, got {t.max_steps}.")
    check_device(t.device, "Config key 'train.device'")
    if d.source not in ("synth", "prepared"):
        raise ConfigError(f"data.source must be 'synth' or 'prepared', got {d.source!r}.")
    if d.source == "prepared":
        if not d.root:
            raise ConfigError("data.source 'prepared' needs data.root, the prepared folder.")
        if not Path(d.root).expanduser().is_dir():
            raise ConfigError(f"Config key 'data.root' names {d.root}, which is not a folder.")
        if d.val_every < 2:
            raise ConfigError(f"data.val_every must be at least 2, got {d.val_every}.")
    elif d.root:
        raise ConfigError(
            f"data.root is set ({d.root}) but data.source is 'synth'; set "
            "data.source=prepared to train on that folder, or drop data.root."
        )
    if not 1 <= d.synth_val_identities < d.synth_identities:
        raise ConfigError(
            "data.synth_val_identities must be at least 1 (validation needs identities "
            f"the model never trains on) and below data.synth_identities, got "
            f"{d.synth_val_identities} of {d.synth_identities}."
        )
    if cfg.verifier_checkpoint and not Path(cfg.verifier_checkpoint).expanduser().is_file():
        raise ConfigError(
            f"Config key 'verifier_checkpoint' names {cfg.verifier_checkpoint}, which is not a "
            "file; point it at a backbone.pt of `facefactors pretrain-id` or set it to null."
        )
    if d.synth_per_identity < 1:
        raise ConfigError(
            f"data.synth_per_identity must be at least 1, got {d.synth_per_identity}."
        )
    return cfg


def preset(name: str, overrides: list[str] | None = None) -> TensorialConfig:
    """A YAML preset (``tensorial_synth_quick``, ``tensorial_synth_paper``, or a file).

    ``tensorial_synth_paper`` has the paper's sizes: 64 px, k_id 80, k_exp 15, k_l 9,
    the full Q_(1) of 12,288 × 10,800. ``tensorial_synth_quick`` is CPU-sized (32 px,
    narrow convs, k_id 16, k_exp 6, a full Q_(1) of 3,072 × 864); every structural
    choice is the paper's, only widths and code sizes shrink.

    Raises:
        ConfigError: an unknown preset, key or value, named.
    """
    return validate(load_config(TensorialConfig, name, overrides))


def paper() -> TensorialConfig:
    """The ``tensorial_synth_paper`` preset."""
    return preset("tensorial_synth_paper")


def quick() -> TensorialConfig:
    """The ``tensorial_synth_quick`` preset."""
    return preset("tensorial_synth_quick")
