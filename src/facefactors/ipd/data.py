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

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

from facefactors.constants import CANONICAL_CLASSES, NEUTRAL, pose_bin
from facefactors.errors import ConfigError
from facefactors.imaging import from_uint8, to_uint8
from facefactors.ipd.config import SEVEN_CLASSES, DataConfig, neutral_index

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

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """Batched access: a base that renders in batches (SynthFaces) does so at once."""
        if not hasattr(self.base, "__getitems__"):
            return [self[i] for i in indices]
        items = self.base.__getitems__([self.indices[i] for i in indices])
        return [self._select(item) for item in items]

    def __getitem__(self, i: int) -> dict:
        return self._select(self.base[self.indices[i]])

    def _select(self, item: dict) -> dict:
        out = {k: item[k] for k in self.keys if k in item}
        y = int(item["expression"])
        out["expression"] = self.label_map[y] if self.label_map is not None else y
        out["pose_bin"] = int(item.get("pose_bin", -1))
        return out


@dataclass
class DataBundle:
    """Training data: train and validation views and the class names of their labels.

    ``preview`` serves the sample grids: validation items with, when the data
    have them, the true ``neutral`` and ``frontal_neutral`` faces (None: use ``val``).
    ``neutral_images`` counts the training images with the neutral label c (a class,
    or D's extra output), which L_recon's neutral term and L_fneu's references
    need (None: not counted, e.g. synthetic faces, which always draw neutral).
    ``notes`` are caveats of the split for the log (validation sharing people).
    """

    train: LabelledView
    val: LabelledView
    classes: list[str]
    preview: LabelledView | None = None
    neutral_images: int | None = None
    notes: list[str] = field(default_factory=list)


def canonical_label_map(classes: Sequence[str]) -> dict[int, int]:
    """Canonical class index → model label; neutral maps to ``len(classes)`` if not a class.

    Canonical classes that are neither in ``classes`` nor neutral are absent.
    """
    out = {CANONICAL_CLASSES.index(name): i for i, name in enumerate(classes)}
    if NEUTRAL not in classes:
        out[CANONICAL_CLASSES.index(NEUTRAL)] = len(classes)
    return out


def build_datasets(
    cfg: DataConfig, classes: list[str] | None, true_neutral: bool = False
) -> DataBundle:
    """Train/validation views for ``cfg.source``.

    Args:
        cfg: the data section of the config.
        classes: requested model classes, or None for the dataset's own.
        true_neutral: training items also carry ``neutral``, the true neutral face
            (``loss.true_neutral``; synthetic faces only).

    Raises:
        ConfigError, DataError: naming the key or folder at fault.
    """
    if cfg.source == "synth":
        chosen = list(classes) if classes is not None else list(SEVEN_CLASSES)
        return _synth(cfg, chosen, true_neutral)
    if true_neutral:
        raise ConfigError(
            f"Config key 'loss.true_neutral' needs synthetic faces; data.source is '{cfg.source}'."
        )
    return _real(cfg, classes)


def _synth(cfg: DataConfig, classes: list[str], true_neutral: bool = False) -> DataBundle:
    """Synthetic training identities; the last ``synth_val_identities`` form the val split."""
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.sampling import SynthConfig

    # Neutral is always drawn: without it as a class it is D's extra output (CK+ setting).
    drawn = tuple(classes) + (() if NEUTRAL in classes else (NEUTRAL,))
    base = SynthFaces(
        split="train",
        identities=cfg.synth_identities,
        per_identity=cfg.synth_per_identity,
        size=cfg.size,
        seed=cfg.synth_seed,
        config=SynthConfig(expression_intensity=tuple(cfg.synth_intensity), classes=drawn),
        maps=False,
    )
    faces = RenderedFaces.load_or_render(base, cfg.synth_cache, neutral=true_neutral)
    first_val = (cfg.synth_identities - cfg.synth_val_identities) * cfg.synth_per_identity
    label_map = canonical_label_map(classes)
    keys = TRAIN_KEYS + (("neutral",) if true_neutral else ())
    train = LabelledView(faces, range(first_val), label_map, keys)
    val_idx = range(first_val, len(base))  # held-out identities only, never training faces
    val = LabelledView(faces, val_idx, label_map)
    # Sample grids also show the true neutral and frontal-neutral faces: render those.
    preview = LabelledView(base, val_idx, label_map, ("image", *PREVIEW_KEYS))
    return DataBundle(train, val, classes, preview)


class RenderedFaces(Dataset):
    """Synthetic faces rendered once and kept as uint8 images (like decoded photos).

    Rendering costs far more than a training step on small models, so every epoch
    reuses the same pixels; with a cache folder, other runs reuse them too.

    Args:
        images: (N, 3, H, W) uint8.
        expression: (N,) canonical class indices.
        pose_bin: (N,) |yaw| bins.
        neutral: (N, 3, H, W) uint8 true neutral faces, or None (not rendered).
    """

    def __init__(
        self,
        images: torch.Tensor,
        expression: torch.Tensor,
        pose_bin: torch.Tensor,
        neutral: torch.Tensor | None = None,
    ) -> None:
        self.images, self.expression, self.pose_bin = images, expression, pose_bin
        self.neutral = neutral

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = {
            "image": from_uint8(self.images[i]),  # (3, H, W) in [-1, 1]
            "expression": int(self.expression[i]),
            "pose_bin": int(self.pose_bin[i]),
        }
        if self.neutral is not None:
            item["neutral"] = from_uint8(self.neutral[i])
        return item

    @classmethod
    def load_or_render(
        cls, base: Dataset, cache_dir: str | None, chunk: int = 64, neutral: bool = False
    ) -> RenderedFaces:
        """Render every face of a ``SynthFaces`` (and its true neutral face when
        ``neutral``), or load an earlier rendering."""
        from facefactors.checkpoint import load_checkpoint, save_checkpoint
        from facefactors.synth.scene import render_batch

        key = f"{base.split}-{base.identities}x{base.per_identity}-{base.size}px-seed{base.seed}-"
        key += _generator_fingerprint(repr(base.config)) + ("-neutral" if neutral else "")
        path = Path(cache_dir).expanduser() / f"synth-{key}.pt" if cache_dir else None
        if path is not None and path.is_file():
            state = load_checkpoint(path)
            return cls(
                state["images"], state["expression"], state["pose_bin"], state.get("neutral")
            )
        images, neutrals, labels, bins = [], [], [], []
        from tqdm.auto import tqdm

        for start in tqdm(
            range(0, len(base), chunk), desc="render synth", disable=not sys.stderr.isatty()
        ):
            idx = list(range(start, min(start + chunk, len(base))))
            f = base.factors(idx)
            out = render_batch(f, base.size, neutral=neutral, frontal=False, maps=False)
            images.append(to_uint8(out["image"]))
            if neutral:
                neutrals.append(to_uint8(out["neutral"]))
            labels.append(torch.as_tensor(f.expression, dtype=torch.int64))
            bins.append(torch.as_tensor([pose_bin(y) for y in f.yaw], dtype=torch.int64))
        faces = cls(
            torch.cat(images), torch.cat(labels), torch.cat(bins),
            torch.cat(neutrals) if neutral else None,
        )  # fmt: skip
        if path is not None:
            state = {"images": faces.images, "expression": faces.expression,
                     "pose_bin": faces.pose_bin}  # fmt: skip
            if neutral:
                state["neutral"] = faces.neutral
            save_checkpoint(path, state)
        return faces


def _real(cfg: DataConfig, classes: list[str] | None) -> DataBundle:
    """A real dataset read by ``facefactors.data``, split by :mod:`facefactors.ipd.splits`."""
    from facefactors.data.torchdata import FaceDataset
    from facefactors.ipd.splits import real_splits

    sets = real_splits(cfg)
    index = sets.index
    if classes is not None and list(classes) != list(index.classes):
        raise ConfigError(
            f"Config key 'model.classes' ({', '.join(classes)}) differs from the classes of "
            f"{cfg.source} at {cfg.root} ({', '.join(index.classes)})."
        )
    # Labels already follow the model's convention: len(classes) marks CK+'s extra neutral.
    train = FaceDataset(sets.train, "train", cfg.size)
    val = FaceDataset(sets.val, "val", cfg.size) if sets.val.samples else []
    c = neutral_index(list(index.classes))
    return DataBundle(
        LabelledView(train, range(len(train))),
        LabelledView(val, range(len(val))),
        list(index.classes),
        neutral_images=sum(s.label == c for s in sets.train.samples),
        notes=list(sets.notes),
    )


def _generator_fingerprint(settings: str) -> str:
    """Hash of the sampling settings and the generator's source: a changed renderer
    never reuses stale cached pixels."""
    import facefactors.synth.dataset as synth_dataset

    h = hashlib.sha1(settings.encode())
    for src in sorted(Path(synth_dataset.__file__).parent.glob("*.py")):
        h.update(src.read_bytes())
    return h.hexdigest()[:12]


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack a list of item dicts into batch tensors."""
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
