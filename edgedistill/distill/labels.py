"""Keep labels for a fraction of the train split (`--labels-fraction F`): the rest are marked
unlabeled (-1, or NaN regression targets) and are learned from the teacher's outputs only."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from edgedistill.tasks.data import Split, all_labels
from edgedistill.tasks.kinds import kind_of

if TYPE_CHECKING:
    import torch


def labeled_mask(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A boolean mask keeping round(F * n_c) (at least 1) labelled samples of each class c
    (regression: of all), chosen with `seed`; samples already unlabeled stay unlabeled."""
    import torch

    strata = kind_of(labels).strata(labels)
    keep = torch.zeros(len(labels), dtype=torch.bool)
    generator = torch.Generator().manual_seed(seed)
    for label in torch.unique(strata[strata >= 0]).tolist():
        members = torch.nonzero(strata == label).flatten()
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

        x, y = self.dataset[index]
        return x, (y if self.keep[index] else kind_of(y).unlabeled(y))


def with_labels_fraction(dataset, fraction: float, seed: int):
    """The train split with labels kept on `fraction` of it; (dataset, labelled count)."""
    import torch

    labels = all_labels(dataset)
    kind = kind_of(labels)
    if fraction >= 1:
        return dataset, int(kind.labeled(labels).sum())
    keep = labeled_mask(labels, fraction, seed)
    if isinstance(dataset, Split):
        kept = keep.reshape(-1, *([1] * (labels.ndim - 1)))
        return Split(dataset.x, torch.where(kept, labels, kind.unlabeled(labels))), int(keep.sum())
    return LabelMasked(dataset, keep), int(keep.sum())


def labeled_part(dataset):
    """The samples of a training split that carry a label (y >= 0)."""
    import torch
    from torch.utils.data import Subset

    labels = all_labels(dataset)
    keep = kind_of(labels).labeled(labels)
    if bool(keep.all()):
        return dataset
    if isinstance(dataset, Split):
        return Split(dataset.x[keep], dataset.y[keep])
    return Subset(dataset, torch.nonzero(keep).flatten().tolist())
