"""Drawing the factors of a synthetic face: identity, expression, pose, light, background.

Every draw takes a ``numpy.random.Generator`` so a sample is reproducible from
its seed alone (see :func:`sample_rng`). :class:`SynthConfig` holds the knobs
that control difficulty (expression intensity, pose spread, lighting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facefactors.constants import CANONICAL_CLASSES
from facefactors.errors import ConfigError
from facefactors.synth import expression as E
from facefactors.synth.shading import C4

# Global identity index of the first test identity: train and test never share one.
TEST_IDENTITY_OFFSET = 1_000_000
SPLITS = ("train", "test")
# |yaw| bins of the pose distribution: [0,10) [10,20) [20,30) [30,40) [40,yaw_max].
YAW_BIN_EDGES = (0.0, 10.0, 20.0, 30.0, 40.0)
BACKGROUND_GRID = 4  # backgrounds are 4x4 colour grids upsampled bilinearly


@dataclass
class SynthConfig:
    """Sampling knobs of the synthetic faces.

    Attributes:
        expression_intensity: range of the prototype AU intensity (uniform).
        au_noise: standard deviation of the small activations of other AUs.
        au_noise_prob: chance that a given other AU gets such an activation.
        yaw_max: largest |yaw| in degrees.
        yaw_bin_weights: probability of each |yaw| bin (RAF-DB-like by default).
        pitch_std, pitch_max: normal spread of pitch, clipped at ±pitch_max.
        roll_std, roll_max: same for roll.
        ambient: range of the uniform light level.
        light_strength: range of the main directional light strength.
        light_colour_jitter: per-channel relative jitter of the light colour.
        fill_light_prob: chance of a second, weaker directional light.
        classes: names of the expression classes to draw (default: all 8).
    """

    expression_intensity: tuple[float, float] = (0.5, 1.0)
    au_noise: float = 0.08
    au_noise_prob: float = 0.35
    yaw_max: float = 60.0
    yaw_bin_weights: tuple[float, ...] = (0.48, 0.21, 0.13, 0.09, 0.10)
    pitch_std: float = 7.0
    pitch_max: float = 20.0
    roll_std: float = 5.0
    roll_max: float = 15.0
    ambient: tuple[float, float] = (0.35, 0.65)
    light_strength: tuple[float, float] = (0.35, 0.8)
    light_colour_jitter: float = 0.08
    fill_light_prob: float = 0.4
    classes: tuple[str, ...] = field(default_factory=lambda: tuple(CANONICAL_CLASSES))

    def __post_init__(self) -> None:
        lo, hi = self.expression_intensity
        if not 0.0 <= lo <= hi:
            raise ConfigError("Config key 'expression_intensity' must be a range 0 <= low <= high.")
        if len(self.yaw_bin_weights) != len(YAW_BIN_EDGES) or min(self.yaw_bin_weights) < 0:
            raise ConfigError("Config key 'yaw_bin_weights' needs 5 non-negative weights.")
        if not 40.0 < self.yaw_max <= 90.0:
            raise ConfigError("Config key 'yaw_max' must lie in (40, 90] degrees.")
        unknown = [c for c in self.classes if c not in CANONICAL_CLASSES]
        if unknown or not self.classes:
            raise ConfigError(
                f"Config key 'classes' must list canonical classes; '{(unknown or [''])[0]}' is not one."
            )


def sample_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator determined by ``(seed, *keys)`` only (same in every process)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)])


def sample_expression(
    rng: np.random.Generator, cls: str, cfg: SynthConfig
) -> tuple[np.ndarray, float]:
    """Per-side AU activations for one sample of class ``cls``.

    Returns:
        ``(exp_coeffs (2 * NUM_AUS,), intensity)``.
    """
    k = float(rng.uniform(*cfg.expression_intensity))
    coeffs = np.zeros((E.NUM_AUS, 2))
    noise = np.abs(rng.normal(0.0, cfg.au_noise, size=(E.NUM_AUS, 2)))
    noise *= rng.uniform(size=(E.NUM_AUS, 1)) < cfg.au_noise_prob
    proto = E.AU_PROTOTYPES[cls]
    side = int(rng.integers(2))
    for i, au in enumerate(E.AU_IDS):
        if au in proto:
            level = k * proto[au] * rng.uniform(0.9, 1.1, size=2)
            if cls in E.UNILATERAL_CLASSES:
                level[1 - side] = 0.0
            coeffs[i] = level
        else:
            coeffs[i] = noise[i]
    return coeffs.reshape(-1), k


def au_intensity(exp_coeffs: np.ndarray) -> np.ndarray:
    """AU vector (..., NUM_AUS): the stronger side of each AU."""
    c = np.asarray(exp_coeffs)
    return c.reshape(*c.shape[:-1], E.NUM_AUS, 2).max(axis=-1)


def _truncnorm(rng: np.random.Generator, std: float, limit: float) -> float:
    for _ in range(100):
        v = rng.normal(0.0, std)
        if abs(v) <= limit:
            return float(v)
    return float(np.clip(v, -limit, limit))


def sample_pose(rng: np.random.Generator, cfg: SynthConfig) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; |yaw| from a piecewise-uniform mixture."""
    w = np.asarray(cfg.yaw_bin_weights, dtype=np.float64)
    b = int(rng.choice(len(w), p=w / w.sum()))
    edges = (*YAW_BIN_EDGES, cfg.yaw_max)
    yaw = rng.uniform(edges[b], edges[b + 1]) * (1.0 if rng.uniform() < 0.5 else -1.0)
    return (
        float(yaw),
        _truncnorm(rng, cfg.pitch_std, cfg.pitch_max),
        _truncnorm(rng, cfg.roll_std, cfg.roll_max),
    )


def _real_sh(d: np.ndarray) -> np.ndarray:
    x, y, z = d
    return np.array(
        [0.282095, 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y,
         1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y)]
    )  # fmt: skip


def light_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector toward a light (camera frame: x right, y up, z toward the viewer)."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])


def lights_to_sh(ambient: np.ndarray, lights: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """SH coefficients (3, 9) of an ambient level (3,) plus distant lights [(dir (3,), rgb (3,))]."""
    sh = np.zeros((3, 9))
    sh[:, 0] = np.asarray(ambient) / C4
    for d, rgb in lights:
        sh += np.asarray(rgb)[:, None] * _real_sh(np.asarray(d) / np.linalg.norm(d))[None, :]
    return sh


def sample_light(rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """Random SH lighting (3, 9): ambient, a key light from the front half, maybe a fill light."""
    tint = 1.0 + cfg.light_colour_jitter * rng.uniform(-1, 1, size=3)
    amb = rng.uniform(*cfg.ambient) * (1.0 + cfg.light_colour_jitter * rng.uniform(-1, 1, size=3))
    key = light_direction(rng.uniform(-70, 70), rng.uniform(-15, 60))
    lights = [(key, rng.uniform(*cfg.light_strength) * tint)]
    if rng.uniform() < cfg.fill_light_prob:
        fill = light_direction(rng.uniform(-80, 80), rng.uniform(-20, 40))
        lights.append((fill, rng.uniform(0.1, 0.3) * np.ones(3)))
    return lights_to_sh(amb, lights)


def sample_background(rng: np.random.Generator) -> np.ndarray:
    """A (3, 4, 4) colour grid: a flat colour or a smooth random texture."""
    level = rng.uniform(0.15, 0.85)
    base = level + rng.normal(0.0, 0.08, size=3)  # muted colours, like indoor photos
    if rng.uniform() < 0.35:
        return np.clip(
            np.broadcast_to(base[:, None, None], (3, BACKGROUND_GRID, BACKGROUND_GRID)), 0.02, 0.98
        )
    shade = rng.normal(0.0, 0.1, size=(1, BACKGROUND_GRID, BACKGROUND_GRID))
    tint = rng.normal(0.0, 0.04, size=(3, BACKGROUND_GRID, BACKGROUND_GRID))
    return np.clip(base[:, None, None] + shade + tint, 0.02, 0.98)
