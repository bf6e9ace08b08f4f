"""The in-memory face table the tensorial trainer reads, from any source."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


class FaceTable(Dataset):
    """Faces as one dict of stacked tensors; item ``i`` is a dict of row ``i``.

    Args:
        columns: name → (N, ...) tensor, every one with the same N.
    """

    def __init__(self, columns: dict[str, torch.Tensor]) -> None:
        sizes = {k: int(v.shape[0]) for k, v in columns.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"FaceTable columns differ in length: {sizes}.")
        self.columns = columns

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.columns.items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        return [self[i] for i in indices]

    def rows(self, indices: range | list[int]) -> FaceTable:
        """A table of some rows (a view of the same storage for a range)."""
        if isinstance(indices, range) and indices.step == 1:
            return FaceTable({k: v[indices.start : indices.stop] for k, v in self.columns.items()})
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return FaceTable({k: v.index_select(0, idx) for k, v in self.columns.items()})


@dataclass
class TensorialData:
    """Training and validation tables (disjoint identities)."""

    train: FaceTable
    val: FaceTable
