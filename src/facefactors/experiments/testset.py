"""The synthetic test split, rendered once with its ground truth.

Test identities are disjoint from every training identity by construction
(``SynthFaces(split="test")``). Besides the posed image we keep the true
``neutral`` (same person, pose and light, zero expression) and the true
``frontal_neutral`` face, so the decoder's neutral face can be scored against
ground truth instead of only looked at.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from facefactors.checkpoint import load_checkpoint, save_checkpoint
from facefactors.constants import CANONICAL_CLASSES
from facefactors.errors import ConfigError
from facefactors.imaging import to_uint8

IMAGE_KEYS = ("image", "neutral", "frontal_neutral")


@dataclass
class SynthTestSet:
    """Rendered test faces.

    Attributes:
        image, neutral, frontal_neutral: (N, 3, S, S) uint8.
        expression: (N,) canonical class index.
        identity: (N,) global identity index.
        yaw: (N,) degrees.
        pose_bin: (N,) 0..4.
    """

    image: torch.Tensor
    neutral: torch.Tensor
    frontal_neutral: torch.Tensor
    expression: torch.Tensor
    identity: torch.Tensor
    yaw: torch.Tensor
    pose_bin: torch.Tensor

    def __len__(self) -> int:
        return len(self.expression)

    def state(self) -> dict[str, torch.Tensor]:
        return dict(self.__dict__)


def render_test_set(
    identities: int,
    per_identity: int,
    size: int,
    seed: int,
    classes: list[str],
    cache: str | Path | None = None,
    chunk: int = 64,
    intensity: tuple[float, float] = (0.5, 1.0),
    first_identity: int = 0,
) -> SynthTestSet:
    """Render ``SynthFaces(split="test")`` with the given classes (cached if ``cache``).

    Args:
        identities, per_identity, size, seed: as for ``SynthFaces``.
        classes: canonical class names to draw (e.g. the seven basic ones).
        cache: a ``.pt`` file to reuse across runs (keyed by the caller).
        intensity: expression intensity range, the same as the training data's.
        chunk: faces rendered per batch.
        first_identity: skip this many test people (a fresh set beside the default one).
    """
    if cache is not None and Path(cache).is_file():
        return SynthTestSet(**load_checkpoint(cache))
    from tqdm.auto import tqdm

    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.sampling import SynthConfig

    unknown = [c for c in classes if c not in CANONICAL_CLASSES]
    if unknown:
        raise ConfigError(f"Unknown expression class '{unknown[0]}'.")
    ds = SynthFaces(
        "test",
        identities,
        per_identity,
        size,
        seed,
        SynthConfig(expression_intensity=intensity, classes=tuple(classes)),
        False,
        first_identity,
    )
    parts: dict[str, list[torch.Tensor]] = {}
    for start in tqdm(
        range(0, len(ds), chunk), desc="render test", disable=not sys.stderr.isatty()
    ):
        b = ds.batch(range(start, min(start + chunk, len(ds))))
        for k in IMAGE_KEYS:
            parts.setdefault(k, []).append(to_uint8(b[k]))
        for k in ("expression", "identity", "yaw", "pose_bin"):
            parts.setdefault(k, []).append(b[k])
    out = SynthTestSet(**{k: torch.cat(v) for k, v in parts.items()})
    if cache is not None:
        save_checkpoint(cache, out.state())
    return out
