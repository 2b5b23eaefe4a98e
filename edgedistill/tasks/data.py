"""Task data held as tensors, the data-adapter registry, and the stratified split."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch

    from edgedistill.tasks.recipe import TaskRecipe


@dataclass(frozen=True)
class Split:
    """A split held in memory. It is also a map-style torch Dataset: split[i] -> (x, y).

    Code outside tasks/ should not assume in-memory tensors: iterate with `iter_batches` and
    count with `len()`, so that lazily decoded datasets (any torch Dataset returning
    (x: float tensor C x H x W, y: int64 label, -1 when unlabeled)) work the same way.
    """

    x: torch.Tensor  # float32, N x C x H x W, preprocessed
    y: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]


def iter_batches(dataset, batch_size: int = 256, limit: int | None = None, workers: int = 0):
    """(x, y) batches in the dataset's order; in-memory splits are sliced without copying."""
    total = len(dataset) if limit is None else min(limit, len(dataset))
    if isinstance(dataset, Split):
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            yield dataset.x[start:stop], dataset.y[start:stop]
        return
    from torch.utils.data import DataLoader, Subset

    subset = dataset if total == len(dataset) else Subset(dataset, range(total))
    yield from DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=workers)


def all_labels(dataset):
    """Every label of the dataset as one int64 tensor, in order."""
    import torch

    if isinstance(dataset, Split):
        return dataset.y
    return torch.cat([y for _, y in iter_batches(dataset)])


@dataclass(frozen=True)
class TaskData:
    train: Split
    val: Split
    test: Split
    fingerprint: str  # sha256 over every split's bytes: keys caches of teachers and outputs

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


DataAdapter = Callable[[str, "TaskRecipe"], "tuple[np.ndarray, np.ndarray]"]
DATA_SOURCES: Registry[DataAdapter] = Registry("data source")


def stratified_split(labels: np.ndarray, train: float, val: float, seed: int):
    """Indices of train / val / test with each class in the same proportions."""
    import numpy as np

    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        n_train = int(round(train * len(members)))
        n_val = int(round(val * len(members)))
        parts[0].extend(members[:n_train])
        parts[1].extend(members[n_train : n_train + n_val])
        parts[2].extend(members[n_train + n_val :])
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def load_task_data(recipe: TaskRecipe) -> TaskData:
    """Load the recipe's data through its adapter, preprocess, split."""
    import numpy as np
    import torch

    scheme, _, argument = recipe.data.source.partition(":")
    if scheme not in DATA_SOURCES:
        raise UserInputError(
            f"task {recipe.name}: field data.source: {DATA_SOURCES.unknown_message(scheme)}"
        )
    images, labels = DATA_SOURCES.get(scheme)(argument, recipe)
    split = recipe.data.split
    indices = stratified_split(labels, split.train, split.val, split.seed)
    digest = hashlib.sha256()
    splits = []
    for index in indices:
        x = torch.from_numpy(np.ascontiguousarray(images[index], dtype=np.float32))
        y = torch.from_numpy(labels[index].astype(np.int64))
        digest.update(x.numpy().tobytes())
        digest.update(y.numpy().tobytes())
        splits.append(Split(x, y))
    return TaskData(*splits, fingerprint=digest.hexdigest())


@DATA_SOURCES.register("builtin")
def builtin_source(argument: str, recipe: TaskRecipe):
    """Data sets that ship with the installed packages (no download): `builtin:digits`."""
    if argument != "digits":
        raise UserInputError(
            f"task {recipe.name}: field data.source: no built-in data {argument!r}"
        )
    return _digits(recipe)


def _digits(recipe: TaskRecipe):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pre = recipe.preprocessing
    images = torch.from_numpy(bunch.images.astype(np.float32) * pre.scale).unsqueeze(1)
    images = F.interpolate(images, size=tuple(pre.resize), mode="bilinear", align_corners=False)
    mean = torch.tensor(pre.mean).view(1, -1, 1, 1)
    std = torch.tensor(pre.std).view(1, -1, 1, 1)
    return ((images - mean) / std).numpy(), bunch.target.astype(np.int64)
