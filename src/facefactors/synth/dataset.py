"""``SynthFaces``: a deterministic dataset of procedural faces with exact factors.

Sample ``i`` of a split belongs to identity ``i // per_identity``. Identity
coefficients come from ``(seed, global identity)`` and everything else
(expression, pose, light, background) from ``(seed, split, i)``, so a sample
is bit-identical in every process. Test identities are numbered from
:data:`~facefactors.synth.sampling.TEST_IDENTITY_OFFSET`, so the splits never
share one. Expression classes cycle through the configured classes with a
random offset per identity (balanced when ``per_identity`` is a multiple).

Pose conventions (see :mod:`facefactors.synth.scene`): positive yaw turns the
face to the subject's left, so the nose moves to image right; positive pitch
tilts the face down; positive roll turns the head counter-clockwise in the
image. Landmarks are ordered left eye, right eye, nose, left and right mouth
corner, "left" meaning image-left (the subject's right), as in the ArcFace
template.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from facefactors.constants import CANONICAL_CLASSES, pose_bin
from facefactors.errors import ConfigError
from facefactors.synth import expression as E
from facefactors.synth import identity as ID
from facefactors.synth import sampling as SM
from facefactors.synth.scene import Factors, render_batch

MIN_SIZE = 32
_ID_STREAM, _CLASS_STREAM = 0x1D, 0xC1A55


def check_positive(name: str, value: int) -> int:
    """``value`` as int, or a ConfigError naming ``name`` if it is not positive."""
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_size(size: int, name: str = "size") -> int:
    """Validated image size (an integer of at least 32 pixels)."""
    check_positive(name, size)
    if size < MIN_SIZE:
        raise ConfigError(f"{name} must be at least {MIN_SIZE} pixels, got {size}.")
    return int(size)


def identity_coeffs(seed: int, identity: int) -> np.ndarray:
    """Coefficients (K_SHAPE + K_ALBEDO,) of a global identity index."""
    return ID.sample_identity(SM.sample_rng(seed, _ID_STREAM, identity))


class SynthFaces(Dataset):
    """Procedural faces with ground-truth identity, expression, pose and light.

    Args:
        split: ``"train"`` or ``"test"`` (disjoint identities).
        identities: number of identities N.
        per_identity: samples per identity M; the dataset has N * M samples.
        size: image size in pixels (>= 32).
        seed: global seed.
        config: sampling knobs (:class:`~facefactors.synth.sampling.SynthConfig`).
        maps: include the mask/normals/albedo/shading/background maps.
        first_identity: index of the split's first identity drawn (0: identities
            0..N-1; 120: identities 120..119+N, disjoint from a 120-identity set).
            Sample i is then sample ``first_identity * per_identity + i`` of the split.

    ``ds[i]`` is a dict of tensors and numbers; see :meth:`batch` for shapes.
    """

    def __init__(
        self,
        split: str = "train",
        identities: int = 100,
        per_identity: int = 8,
        size: int = 112,
        seed: int = 0,
        config: SM.SynthConfig | None = None,
        maps: bool = True,
        first_identity: int = 0,
    ) -> None:
        if split not in SM.SPLITS:
            raise ConfigError(f"Unknown split '{split}'; choose one of {', '.join(SM.SPLITS)}.")
        self.split = split
        self.identities = check_positive("identities", identities)
        self.per_identity = check_positive("per_identity", per_identity)
        self.size = check_size(size)
        self.seed = int(seed)
        self.config = config or SM.SynthConfig()
        self.maps = maps
        if first_identity < 0:
            raise ConfigError(f"first_identity must be >= 0, got {first_identity}.")
        self.first_identity = int(first_identity)
        self._class_ids = [CANONICAL_CLASSES.index(c) for c in self.config.classes]

    def __len__(self) -> int:
        return self.identities * self.per_identity

    def identity_of(self, index: int) -> int:
        """Global identity index of sample ``index``."""
        offset = SM.TEST_IDENTITY_OFFSET if self.split == "test" else 0
        return offset + self.first_identity + index // self.per_identity

    def _check_index(self, index: int) -> int:
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample index {index} out of range for {n} samples")
        return i

    def factors(self, indices: Sequence[int]) -> Factors:
        """The factors of the given samples (no rendering)."""
        rows = []
        split_code = SM.SPLITS.index(self.split)
        k = len(self._class_ids)
        for index in indices:
            i = self._check_index(index)
            gid = self.identity_of(i)
            offset = int(SM.sample_rng(self.seed, _CLASS_STREAM, gid).integers(k))
            cls = self._class_ids[(i % self.per_identity + offset) % k]
            rng = SM.sample_rng(self.seed, split_code, self.first_identity * self.per_identity + i)
            exp, _ = SM.sample_expression(rng, CANONICAL_CLASSES[cls], self.config)
            yaw, pitch, roll = SM.sample_pose(rng, self.config)
            rows.append(
                Factors(
                    id_coeffs=identity_coeffs(self.seed, gid)[None],
                    exp_coeffs=exp[None],
                    yaw=np.array([yaw]),
                    pitch=np.array([pitch]),
                    roll=np.array([roll]),
                    sh=SM.sample_light(rng, self.config)[None],
                    background=SM.sample_background(rng)[None],
                    expression=np.array([cls]),
                    identity=np.array([gid]),
                )
            )
        return Factors.stack(rows)

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Render several samples at once (much faster than one by one).

        Returns:
            Dict of batched tensors: ``image``, ``neutral``, ``frontal_neutral``
            (B, 3, H, W) in [-1, 1]; with maps: ``mask`` (B, 1, H, W),
            ``normals``, ``albedo``, ``shading``, ``background`` (B, 3, H, W);
            ``landmarks5`` (B, 5, 2) px; ``vertices`` (B, Vs, 3) mm;
            ``rotation`` (B, 3, 3); ``expression``, ``identity``, ``pose_bin``,
            ``index`` (B,) int64; ``au`` (B, 18), ``id_coeffs`` (B, K_id),
            ``exp_coeffs`` (B, 36), ``yaw``, ``pitch``, ``roll`` (B,) degrees,
            ``sh`` (B, 3, 9): float32.
        """
        f = self.factors(indices)
        out = render_batch(f, self.size, maps=self.maps)
        return {**out, **factor_tensors(f), "index": torch.as_tensor(list(indices)).long()}

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        b = self.batch(indices)
        return [{k: v[j] for k, v in b.items()} for j in range(len(indices))]

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]


def factor_tensors(f: Factors) -> dict[str, torch.Tensor]:
    """Factor arrays as tensors (float32 / int64), plus the AU vector and pose bins."""

    def f32(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)

    return {
        "expression": torch.as_tensor(f.expression, dtype=torch.int64),
        "identity": torch.as_tensor(f.identity, dtype=torch.int64),
        "au": f32(SM.au_intensity(f.exp_coeffs)),
        "id_coeffs": f32(f.id_coeffs),
        "exp_coeffs": f32(f.exp_coeffs),
        "yaw": f32(f.yaw),
        "pitch": f32(f.pitch),
        "roll": f32(f.roll),
        "pose_bin": torch.as_tensor([pose_bin(y) for y in f.yaw], dtype=torch.int64),
        "sh": f32(f.sh),
    }


def default_light() -> np.ndarray:
    """A soft frontal key light from the upper left plus ambient, (3, 9)."""
    return SM.lights_to_sh(np.full(3, 0.5), [(SM.light_direction(-25.0, 30.0), np.full(3, 0.65))])


def exp_from_au(au: dict[int, float] | Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-side coefficients (36,) of a bilateral AU setting.

    Args:
        au: ``{AU number: intensity}`` or an (18,) vector in :data:`AU_IDS` order.
    """
    out = np.zeros((E.NUM_AUS, 2))
    if isinstance(au, dict):
        for k, v in au.items():
            if k not in E.AU_IDS:
                raise ConfigError(f"Unknown action unit AU{k}; known: {list(E.AU_IDS)}.")
            out[E.au_index(k)] = v
    else:
        vec = np.asarray(au, dtype=np.float64).reshape(-1)
        if vec.shape != (E.NUM_AUS,):
            raise ConfigError(f"An AU vector needs {E.NUM_AUS} values, got {vec.size}.")
        out[:] = vec[:, None]
    return out.reshape(-1)


def render_face(
    id_coeffs: np.ndarray | None = None,
    au: dict[int, float] | Sequence[float] | None = None,
    exp_coeffs: np.ndarray | None = None,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    sh: np.ndarray | None = None,
    background: np.ndarray | Sequence[float] | None = None,
    size: int = 112,
) -> dict:
    """Render one face from explicit factors.

    Args:
        id_coeffs: (K_SHAPE + K_ALBEDO,) identity; default the mean identity.
        au: bilateral AU intensities (dict or (18,) vector); ignored when
            ``exp_coeffs`` (36,) per-side coefficients are given.
        yaw, pitch, roll: degrees (conventions in :mod:`facefactors.synth.scene`).
        sh: (3, 9) lighting; default :func:`default_light`.
        background: an RGB colour (3,) or a (3, 4, 4) grid in [0, 1]; default grey.
        size: image size (>= 32).

    Returns:
        The same keys as ``SynthFaces()[i]`` (``expression`` and ``identity`` are -1).
    """
    size = check_size(size)
    idc = ID.mean_identity() if id_coeffs is None else np.asarray(id_coeffs, dtype=np.float64)
    if exp_coeffs is None:
        exp_coeffs = exp_from_au(au) if au is not None else np.zeros(2 * E.NUM_AUS)
    bg = np.full(3, 0.5) if background is None else np.asarray(background, dtype=np.float64)
    if bg.shape == (3,):
        bg = np.broadcast_to(bg[:, None, None], (3, SM.BACKGROUND_GRID, SM.BACKGROUND_GRID))
    f = Factors(
        id_coeffs=idc[None],
        exp_coeffs=np.asarray(exp_coeffs, dtype=np.float64)[None],
        yaw=np.array([float(yaw)]),
        pitch=np.array([float(pitch)]),
        roll=np.array([float(roll)]),
        sh=(default_light() if sh is None else np.asarray(sh, dtype=np.float64))[None],
        background=np.ascontiguousarray(bg)[None],
        expression=np.array([-1]),
        identity=np.array([-1]),
    )
    out = {**render_batch(f, size), **factor_tensors(f)}
    return {k: v[0] for k, v in out.items()}
