"""Keep labels for a fraction of the train split (`--labels-fraction F`): the rest are marked
unlabeled (-1) and are learned from the teacher's soft targets only."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from edgedistill.tasks.data import Split, all_labels

if TYPE_CHECKING:
    import torch


def labeled_mask(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A boolean mask keeping round(F * n_c) (at least 1) labelled samples of each class c,
    chosen with `seed`; samples already unlabeled (-1) stay unlabeled."""
    import torch

    keep = torch.zeros(len(labels), dtype=torch.bool)
    generator = torch.Generator().manual_seed(seed)
    for label in torch.unique(labels[labels >= 0]).tolist():
        members = torch.nonzero(labels == label).flatten()
        count = max(1, math.floor(fraction * len(members) + 0.5))
        chosen = members[torch.randperm(len(members), generator=generator)[:count]]
        keep[chosen] = True
    return keep


class LabelMasked:
    """A map-style dataset that hides the labels outside `keep` (x unchanged, y = -1)."""

    def __init__(self, dataset, keep: torch.Tensor) -> None:
        self.dataset = dataset
        self.keep = keep

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        import torch

        x, y = self.dataset[index]
        return x, (y if self.keep[index] else torch.tensor(-1, dtype=torch.int64))


def with_labels_fraction(dataset, fraction: float, seed: int):
    """The train split with labels kept on `fraction` of it; (dataset, labelled count)."""
    import torch

    labels = all_labels(dataset)
    if fraction >= 1:
        return dataset, int((labels >= 0).sum())
    keep = labeled_mask(labels, fraction, seed)
    if isinstance(dataset, Split):
        return Split(dataset.x, torch.where(keep, labels, -1)), int(keep.sum())
    return LabelMasked(dataset, keep), int(keep.sum())


def labeled_part(dataset):
    """The samples of a training split that carry a label (y >= 0)."""
    import torch
    from torch.utils.data import Subset

    labels = all_labels(dataset)
    keep = labels >= 0
    if bool(keep.all()):
        return dataset
    if isinstance(dataset, Split):
        return Split(dataset.x[keep], dataset.y[keep])
    return Subset(dataset, torch.nonzero(keep).flatten().tolist())
