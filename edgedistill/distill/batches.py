"""Training mini-batches of one epoch in a given order, as (sample index, x, y).

In-memory splits are indexed directly; any other map-style Dataset goes through a DataLoader
with `workers` processes. With several ranks each takes its share of every global batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgedistill.tasks.data import Split

if TYPE_CHECKING:
    import torch


def steps_per_epoch(samples: int, batch_size: int, world: int = 1) -> int:
    """Global batches in an epoch; a last batch smaller than the number of ranks is dropped."""
    full, rest = divmod(samples, batch_size)
    return full + (1 if rest >= world else 0)


def batch_indices(
    order: torch.Tensor, batch_size: int, step: int, rank: int = 0, world: int = 1
) -> torch.Tensor:
    return order[step * batch_size : (step + 1) * batch_size][rank::world]


class _Indexed:
    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return index, x, y


def epoch_batches(
    dataset,
    order: torch.Tensor,
    batch_size: int,
    start_step: int = 0,
    rank: int = 0,
    world: int = 1,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:

    steps = steps_per_epoch(len(order), batch_size, world)
    plan = [batch_indices(order, batch_size, s, rank, world) for s in range(start_step, steps)]
    if isinstance(dataset, Split):
        for index in plan:
            yield index, dataset.x[index], dataset.y[index]
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(
        _Indexed(dataset),
        batch_sampler=[index.tolist() for index in plan],
        num_workers=workers,
        persistent_workers=False,
    )
    yield from loader
