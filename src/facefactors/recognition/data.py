"""Identity-labelled face data for recognition pretraining.

Two sources, both yielding ``{"image": (3, S, S) float in [-1, 1], "identity":
int in 0..K-1}``:

- :class:`IdentityFolder`: a CASIA-WebFace-style tree ``root/<identity>/*.jpg``,
  decoded lazily (such trees hold hundreds of thousands of images);
- :class:`CachedIdentities`: images held in memory as uint8, used for synthetic
  identities, which are rendered once rather than once per epoch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from facefactors.data.io import is_image_name, load_image_rgb, to_tensor
from facefactors.errors import DataError
from facefactors.imaging import from_uint8, to_uint8


def list_identities(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Map each identity folder under ``root`` to its sorted image files.

    Hidden entries and folders without images are left out.

    Raises:
        DataError: ``root`` is missing or holds no identity folder with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Identity folder {root} does not exist.")
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f
            for f in folder.iterdir()
            if f.is_file() and not f.name.startswith(".") and is_image_name(f)
        )
        if files:
            found[folder.name] = files
    if not found:
        raise DataError(
            f"Identity folder {root} holds no images; expected {root}/<identity>/*.jpg (or .png)."
        )
    return found


class IdentityFolder(Dataset):
    """Images from ``root/<identity>/*.jpg|png``, labelled by identity folder.

    Args:
        root: the tree's root folder.
        size: output side length; images are resized to (size, size).
        identities: folder names to keep (e.g. the training identities after
            holding some out for verification); None keeps all.

    Attributes:
        names: identity folder names; ``names[k]`` is label ``k``.
        files: every image path; ``labels[i]`` is the identity of ``files[i]``.
        labels: (N,) int64 array.
    """

    def __init__(
        self, root: str | os.PathLike, size: int, identities: Sequence[str] | None = None
    ) -> None:
        tree = list_identities(root)
        if identities is not None:
            unknown = [n for n in identities if n not in tree]
            if unknown:
                raise DataError(
                    f"Identity folder {root} has no images for identity '{unknown[0]}'."
                )
            tree = {n: tree[n] for n in identities}
        self.root = Path(root)
        self.size = size
        self.names = list(tree)
        self.files = [f for files in tree.values() for f in files]
        self.labels = np.concatenate(
            [np.full(len(f), k, dtype=np.int64) for k, f in enumerate(tree.values())]
        )

    @property
    def num_identities(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        """``{"image": (3, size, size) float32 in [-1, 1], "identity": int}``; a corrupt file raises DataError."""
        return {
            "image": to_tensor(load_image_rgb(self.files[i]), self.size),
            "identity": int(self.labels[i]),
        }


class CachedIdentities(Dataset):
    """In-memory identity dataset with labels re-indexed to 0..K-1.

    Args:
        images: (N, 3, H, W) uint8 images.
        identities: (N,) any integer identity ids (e.g. global synthetic ids).

    Attributes:
        labels: (N,) int64 labels in 0..K-1, in order of the sorted original ids.
        original_ids: (K,) the original id of each label.
    """

    def __init__(self, images: torch.Tensor, identities: torch.Tensor) -> None:
        if (
            images.dtype != torch.uint8
            or images.ndim != 4
            or images.shape[0] != identities.shape[0]
        ):
            raise DataError(
                f"CachedIdentities needs (N, 3, H, W) uint8 images and N identities, got "
                f"{tuple(images.shape)} {images.dtype} and {tuple(identities.shape)}."
            )
        self.images = images
        self.original_ids, self.labels = torch.unique(identities.long(), return_inverse=True)

    @property
    def num_identities(self) -> int:
        return int(self.original_ids.numel())

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> dict:
        return {"image": from_uint8(self.images[i]), "identity": int(self.labels[i])}


def render_dataset(
    source: Dataset, batch_size: int = 64, num_workers: int = 0, desc: str = "render"
) -> CachedIdentities:
    """Decode/render every item of ``source`` once and keep it in memory as uint8.

    Args:
        source: a dataset whose items are dicts with ``image`` (3, H, W) in
            [-1, 1] and an integer ``identity`` (e.g. ``facefactors.synth.SynthFaces``).
        batch_size: items per loader batch.
        num_workers: loader worker processes (rendering is CPU-bound).
        desc: progress-bar label.

    Returns:
        A :class:`CachedIdentities` with identities re-indexed to 0..K-1.
    """
    import sys

    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    if len(source) == 0:
        raise DataError(f"The {desc} source is empty: ask for at least one identity and image.")
    loader = DataLoader(source, batch_size=batch_size, num_workers=num_workers, collate_fn=_stack)
    images, ids = [], []
    for batch in tqdm(loader, desc=desc, disable=not sys.stderr.isatty(), leave=False):
        images.append(to_uint8(batch["image"]))
        ids.append(batch["identity"])
    return CachedIdentities(torch.cat(images), torch.cat(ids))


def _stack(items: list[dict]) -> dict[str, torch.Tensor]:
    # Only the two keys we need: synthetic items also carry pose, expression,
    # neutral renders... that would cost memory for nothing here.
    return {
        "image": torch.stack([it["image"] for it in items]),
        "identity": torch.tensor([int(it["identity"]) for it in items], dtype=torch.long),
    }


def synth_identities(
    split: str,
    identities: int,
    per_identity: int,
    size: int,
    seed: int,
    num_workers: int = 0,
    *,
    first_identity: int = 0,
    intensity: tuple[float, float] = (0.5, 1.0),
) -> CachedIdentities:
    """Render ``identities × per_identity`` synthetic faces of one split into memory.

    Train and test splits of :class:`facefactors.synth.SynthFaces` hold disjoint
    identities, so the test split is the held-out set for verification. Labels are
    0..identities-1 whatever ``first_identity`` is.
    """
    from facefactors.synth import SynthFaces
    from facefactors.synth.sampling import SynthConfig

    # maps=False: only the image and the identity are needed here.
    ds = SynthFaces(
        split=split,
        identities=identities,
        per_identity=per_identity,
        size=size,
        seed=seed,
        maps=False,
        first_identity=first_identity,
        config=SynthConfig(expression_intensity=tuple(intensity)),
    )
    return render_dataset(ds, num_workers=num_workers, desc=f"render synth {split}")
