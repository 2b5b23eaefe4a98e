"""The data interface (Split, iter_batches, all_labels, TaskData) and the data-source registry.

Every split is a map-style torch Dataset: split[i] -> (x: float32 C x H x W, y: int64, -1 when
unlabeled); a text task's x is int64 token ids, L (tasks/text_task.py). Small data is decoded
once and held in memory (`Split`, the fast path); data larger than the recipe's
`data.in_memory_mb` stays on disk and is decoded batch by batch (`TableDataset`), by worker
processes when `--workers` asks for them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.errors import UserInputError
from edgedistill.inputs import Vocabulary
from edgedistill.tasks.kinds import TASK_KINDS, TaskKind, kind_of
from edgedistill.tasks.preprocess import Preprocessor
from edgedistill.tasks.sources import DATA_SOURCES, SourceContext
from edgedistill.tasks.splits import split_indices
from edgedistill.tasks.table import ImageFacts, SampleTable, TableDataset
from edgedistill.tasks.user_code import looks_like_callable

if TYPE_CHECKING:
    import torch

    from edgedistill.tasks.recipe import DataSpec, TaskRecipe

# Bytes per decoded sample element: float32.
_FLOAT_BYTES = 4


@dataclass(frozen=True)
class Split:
    """A split held in memory. It is also a map-style torch Dataset: split[i] -> (x, y).

    Code outside tasks/ should not assume in-memory tensors: iterate with `iter_batches` and
    count with `len()`, so that lazily decoded datasets (any torch Dataset returning
    (x: float tensor C x H x W, y: int64 label, -1 when unlabeled)) work the same way.
    """

    x: torch.Tensor  # float32, N x C x H x W, preprocessed (text: int64 token ids, N x L)
    y: torch.Tensor  # int64, N (regression, embedding: float32, N x outputs)
    kind: str | None = None  # the task kind when the targets do not tell it (embedding)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]


def task_kind(dataset, targets: torch.Tensor | None = None) -> TaskKind:
    """The kind of task a dataset's targets belong to: the one its split names (through Subset
    and other wrappers), else the one its targets tell (tasks/kinds.py: `kind_of`)."""
    inner = dataset
    while not isinstance(inner, Split) and hasattr(inner, "dataset"):
        inner = inner.dataset
    if isinstance(inner, Split) and inner.kind is not None:
        return TASK_KINDS.get(inner.kind)
    return kind_of(all_labels(dataset) if targets is None else targets)


def loader_workers(dataset) -> int:
    """The worker processes a dataset asks for (`workers` attribute, through Subset wrappers)."""
    while not hasattr(dataset, "workers") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    return int(getattr(dataset, "workers", 0) or 0)


def iter_batches(
    dataset, batch_size: int = 256, limit: int | None = None, workers: int | None = None
):
    """(x, y) batches in the dataset's order; in-memory splits are sliced without copying.

    `workers` defaults to what the dataset asks for (lazily decoded data: the --workers flag).
    """
    total = len(dataset) if limit is None else min(limit, len(dataset))
    if isinstance(dataset, Split):
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            yield dataset.x[start:stop], dataset.y[start:stop]
        return
    from torch.utils.data import DataLoader, Subset

    if workers is None:
        workers = loader_workers(dataset)
    subset = dataset if total == len(dataset) else Subset(dataset, range(total))
    yield from DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=workers)


def all_labels(dataset):
    """Every label of the dataset as one int64 tensor, in order (without decoding images when
    the dataset knows its labels)."""
    import torch
    from torch.utils.data import Subset

    if isinstance(dataset, Split):
        return dataset.y
    if isinstance(dataset, Subset):
        return all_labels(dataset.dataset)[torch.as_tensor(list(dataset.indices))]
    known = getattr(dataset, "labels", None)
    if known is not None and len(known) == len(dataset):
        known = torch.as_tensor(known)
        return known if known.is_floating_point() else known.to(torch.int64)
    return torch.cat([y for _, y in iter_batches(dataset)])


@dataclass(frozen=True)
class TaskData:
    train: Any  # map-style Datasets (Split when held in memory)
    val: Any
    test: Any
    fingerprint: str  # changes when the data, its split or its preprocessing change
    input_shape: tuple[int, ...]  # one sample's: (C, H, W), or (L,) token ids
    split: dict = field(default_factory=dict)  # how the split was made, and its sizes
    source: str = ""
    notes: tuple[str, ...] = ()
    facts: ImageFacts | None = None  # the raw samples, before preprocessing (images)
    vocabulary: Vocabulary | None = None  # text: the ids the tokenizer produces


def parse_source(source: str, what: str) -> tuple[str, str]:
    """(scheme, argument): `npz:FILE` -> ("npz", FILE); `FILE.py:FN` -> ("python", source)."""

    scheme, sep, argument = source.partition(":")
    if sep and scheme in DATA_SOURCES:
        return scheme, argument
    if looks_like_callable(source):
        return "python", source
    raise UserInputError(
        f"{what}: cannot read {source!r}; expected images (imagefolder:DIR, npz:FILE, "
        "FILE.py:FN, package.module:FN, builtin:digits) or texts (text:FILE, jsonl:FILE, "
        f"csv:FILE, builtin:fortunes) ({DATA_SOURCES.unknown_message(scheme)})"
    )


def open_source(spec: DataSpec, context: SourceContext) -> SampleTable:
    scheme, argument = parse_source(spec.source, context.what)
    return DATA_SOURCES.get(scheme)(argument, context)


def context_for(recipe, what: str) -> SourceContext:
    """The adapter context for a recipe (or recipe document): its hints about the samples."""
    channel_order = size = None
    if recipe.preprocessing is not None:
        channel_order = recipe.preprocessing.channel_order
        size = tuple(recipe.preprocessing.resize)
    elif recipe.input is not None:
        channel_order = {1: "gray", 3: "rgb"}.get(recipe.input.channels)
        size = (recipe.input.height, recipe.input.width)
    return SourceContext(recipe.data.base_dir, what, channel_order, size)


def build_task_data(
    table: SampleTable,
    recipe: TaskRecipe,
    workers: int = 0,
    split: tuple[dict, dict] | None = None,
) -> TaskData:
    """Split the table (unless `split` gives the rows and record already), attach
    preprocessing, and hold the splits in memory when they are small."""
    import numpy as np

    parts, record = split or split_indices(table, recipe.data.split)
    transform = None if table.facts.kind == "ready" else Preprocessor(recipe.preprocessing)
    datasets = {name: TableDataset(table, rows, transform, workers) for name, rows in parts.items()}
    input_shape = recipe.input.shape
    first, _ = datasets["train"][0]
    if tuple(first.shape) != input_shape:
        raise UserInputError(
            f"{table.source}: a sample becomes {tuple(first.shape)} but the task's input is "
            f"{input_shape} (C, H, W); fix the recipe's input / preprocessing or the data"
        )
    digest = hashlib.sha256()
    digest.update(table.identity.encode())
    digest.update(np.ascontiguousarray(table.labels, dtype=np.int64).tobytes())
    if table.targets is not None:
        digest.update(np.ascontiguousarray(table.targets, dtype=np.float32).tobytes())
    for rows in parts.values():
        digest.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    digest.update(json.dumps(recipe.preprocessing.model_dump(mode="json"), sort_keys=True).encode())
    digest.update(json.dumps([table.facts.kind, list(input_shape)]).encode())
    decoded_mb = len(table) * math.prod(input_shape) * _FLOAT_BYTES / 2**20
    in_memory = decoded_mb <= recipe.data.in_memory_mb
    splits = {
        name: _materialize(dataset) if in_memory else dataset for name, dataset in datasets.items()
    }
    record = {**record, "in_memory": in_memory, "decoded_mb": round(decoded_mb, 1)}
    return TaskData(
        splits["train"],
        splits["val"],
        splits["test"],
        fingerprint=digest.hexdigest(),
        input_shape=input_shape,
        split=record,
        source=recipe.data.source,
        notes=tuple(table.notes),
        facts=table.facts,
    )


def _materialize(dataset: TableDataset) -> Split:
    import torch

    xs, ys = [], []
    for x, y in iter_batches(dataset):
        xs.append(x)
        ys.append(y)
    return Split(torch.cat(xs).contiguous(), torch.cat(ys))


def load_task_data(recipe: TaskRecipe, workers: int = 0) -> TaskData:
    """Load a complete recipe's data through its adapter, split and preprocess it."""
    what = f"task {recipe.name}: field data.source"
    table = open_source(recipe.data, context_for(recipe, what))
    return build_task_data(table, recipe, workers)


def read_samples(recipe: TaskRecipe, source: str, what: str = "--data") -> Split:
    """Every sample of `source`, unsplit, fed with the recipe's preprocessing: data a run never
    saw (a drift audit's sample of production inputs). Labels are -1 where the data has none."""
    import numpy as np

    spec = recipe.data.model_copy(update={"source": source}).located(Path.cwd())
    table = open_source(spec, context_for(recipe.model_copy(update={"data": spec}), what))
    if len(table) == 0:
        raise UserInputError(f"{what} {source}: holds no samples")
    transform = None if table.facts.kind == "ready" else Preprocessor(recipe.preprocessing)
    dataset = TableDataset(table, np.arange(len(table)), transform, 0)
    first, _ = dataset[0]
    if tuple(first.shape) != recipe.input.shape:
        raise UserInputError(
            f"{what} {source}: a sample becomes {tuple(first.shape)} but the run's model takes "
            f"{recipe.input.shape} (C, H, W)"
        )
    return _materialize(dataset)
