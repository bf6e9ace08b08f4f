"""Datasets for IPD-FER training: synthetic faces, or a real dataset through ``facefactors.data``.

The trainer needs items ``{"image": (3, H, W) in [-1, 1], "expression": int,
"pose_bin": int}`` with labels in the model's class order (``len(classes)``
marks a neutral reference when neutral is not a class, the CK+ setting) and a
pose bin of -1 when unknown. :func:`build_datasets` returns a training split
and a validation split drawn from the *training* data: for synthetic faces the
last ``data.synth_val_identities`` training identities, so validation faces are
of people never trained on, and the test split stays untouched for evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from facefactors.constants import CANONICAL_CLASSES, NEUTRAL
from facefactors.errors import ConfigError, DataError
from facefactors.ipd.config import SEVEN_CLASSES, DataConfig

TRAIN_KEYS = ("image", "expression", "pose_bin")
# Extra columns of the sample grids when the data have them (synthetic faces).
PREVIEW_KEYS = ("neutral", "frontal_neutral")


class LabelledView(Dataset):
    """A subset of a dataset with only some keys and labels remapped to model classes.

    Args:
        base: a dataset of dicts.
        indices: which base items, in order.
        label_map: base expression label → model label (None: unchanged).
        keys: keys to keep (missing ones are skipped).
    """

    def __init__(
        self,
        base: Dataset,
        indices: Sequence[int],
        label_map: dict[int, int] | None = None,
        keys: Sequence[str] = TRAIN_KEYS,
    ) -> None:
        self.base = base
        self.indices = list(indices)
        self.label_map = label_map
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        item = self.base[self.indices[i]]
        out = {k: item[k] for k in self.keys if k in item}
        y = int(item["expression"])
        out["expression"] = self.label_map[y] if self.label_map is not None else y
        out["pose_bin"] = int(item.get("pose_bin", -1))
        return out

    def with_keys(self, keys: Sequence[str]) -> LabelledView:
        """The same samples with other keys (e.g. the true neutral faces for grids)."""
        return LabelledView(self.base, self.indices, self.label_map, keys)


@dataclass
class DataBundle:
    """Training data: train and validation views and the class names of their labels."""

    train: LabelledView
    val: LabelledView
    classes: list[str]


def canonical_label_map(classes: Sequence[str]) -> dict[int, int]:
    """Canonical class index → model label; neutral maps to ``len(classes)`` if not a class.

    Canonical classes that are neither in ``classes`` nor neutral are absent.
    """
    out = {CANONICAL_CLASSES.index(name): i for i, name in enumerate(classes)}
    if NEUTRAL not in classes:
        out[CANONICAL_CLASSES.index(NEUTRAL)] = len(classes)
    return out


def build_datasets(cfg: DataConfig, classes: list[str] | None) -> DataBundle:
    """Train/validation views for ``cfg.source``.

    Args:
        cfg: the data section of the config.
        classes: requested model classes, or None for the dataset's own.

    Raises:
        ConfigError, DataError: naming the key or folder at fault.
    """
    if cfg.source == "synth":
        return _synth(cfg, list(classes) if classes is not None else list(SEVEN_CLASSES))
    return _real(cfg, classes)


def _synth(cfg: DataConfig, classes: list[str]) -> DataBundle:
    from facefactors.synth import SynthFaces

    base = SynthFaces(
        split="train",
        identities=cfg.synth_identities,
        per_identity=cfg.synth_per_identity,
        size=cfg.size,
        seed=cfg.synth_seed,
    )
    label_map = canonical_label_map(classes)
    labels = base.expressions()  # (N,) canonical class per sample, without rendering
    identities = base.identity_indices()  # (N,) 0..identities-1, without rendering
    first_val = cfg.synth_identities - cfg.synth_val_identities
    keep = [i for i in range(len(base)) if int(labels[i]) in label_map]
    train = [i for i in keep if identities[i] < first_val]
    val = [i for i in keep if identities[i] >= first_val]
    if not val:
        val = train[: max(1, len(train) // 10)]  # no identities held out: a slice of train
    return DataBundle(LabelledView(base, train, label_map), LabelledView(base, val, label_map), classes)


def _real(cfg: DataConfig, classes: list[str] | None) -> DataBundle:
    """Hook for real datasets: ``facefactors.data`` indexes ``data.root`` by loader name."""
    if cfg.root is None:
        raise ConfigError(f"Config key 'data.root' must name the folder of data.source={cfg.source}.")
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"Data directory {root} (config key 'data.root') does not exist.")
    from facefactors.data import FaceDataset, load_dataset

    index = load_dataset(cfg.source, root)
    if classes is not None and list(classes) != list(index.classes):
        raise ConfigError(
            f"Config key 'model.classes' ({', '.join(classes)}) differs from the classes of "
            f"{cfg.source} at {root} ({', '.join(index.classes)})."
        )
    base = FaceDataset(index, "train", cfg.size)
    # Every tenth training image (a fixed stride, so the split never depends on a seed).
    val = list(range(0, len(base), 10))
    train = [i for i in range(len(base)) if i % 10]
    return DataBundle(LabelledView(base, train), LabelledView(base, val), list(index.classes))


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack a list of item dicts into batch tensors."""
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
