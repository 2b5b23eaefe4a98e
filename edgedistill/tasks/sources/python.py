"""`FILE.py:FN` or `package.module:FN`: a function of the user's that returns torch Datasets.

FN() returns one Dataset (split here), a (train, test) or (train, val, test) tuple, or a dict
with keys among train, val, test and unlabeled. Each item is (x, y): x a C x H x W float
tensor (or array) already transformed the way the model takes it, y an int class (-1 when
unlabeled). The data is read once to collect labels and a fingerprint; a dataset that has
`targets` (a label per item) and `fingerprint` (a string that changes with its content) is
not read at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgedistill.errors import UserInputError
from edgedistill.tasks.sources._registry import DATA_SOURCES, SourceContext
from edgedistill.tasks.table import (
    TEST,
    TRAIN,
    VAL,
    ImageFacts,
    SampleTable,
    regression_targets,
)
from edgedistill.tasks.user_code import load_callable

if TYPE_CHECKING:
    import numpy as np

SPLIT_KEYS = {"train": TRAIN, "val": VAL, "test": TEST, "unlabeled": TRAIN}


@dataclass
class DatasetRows:
    """Reads row i from whichever user dataset holds it; checks the sample is the right shape."""

    datasets: list[Any]
    offsets: np.ndarray
    shape: tuple[int, ...]
    source: str

    def locate(self, index: int):
        import numpy as np

        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return part, index - int(self.offsets[part])

    def item(self, index: int):
        part, row = self.locate(index)
        return self.datasets[part][row]

    def __call__(self, index: int):
        x = _as_tensor(self.item(index)[0])
        if tuple(x.shape) != self.shape:
            part, row = self.locate(index)
            raise UserInputError(
                f"{self.source}: item {row} of dataset {part} has shape {tuple(x.shape)}; the "
                f"first one had {self.shape}; every sample must have one shape"
            )
        return x


def _as_tensor(x):
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32)
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


def _named_datasets(result, source: str) -> list[tuple[str, Any]]:
    if isinstance(result, dict):
        unknown = sorted(set(result) - set(SPLIT_KEYS))
        if unknown or "train" not in result:
            raise UserInputError(
                f"{source}: returned a dict with keys {sorted(result)}; expected train and "
                "optionally val, test, unlabeled"
            )
        named = list(result.items())
    elif isinstance(result, (tuple, list)):
        names = {2: ("train", "test"), 3: ("train", "val", "test")}.get(len(result))
        if names is None:
            raise UserInputError(
                f"{source}: returned {len(result)} datasets; expected 1, (train, test), "
                "(train, val, test) or a dict"
            )
        named = list(zip(names, result, strict=True))
    else:
        named = [("all", result)]
    for name, dataset in named:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise UserInputError(
                f"{source}: {name} is a {type(dataset).__name__}, not a map-style torch "
                "Dataset (with __len__ and __getitem__)"
            )
        if len(dataset) == 0:
            raise UserInputError(f"{source}: the {name} dataset is empty")
    return named


def is_float_target(y) -> bool:
    """A regression target (a float, or a float array or tensor), not a class index."""
    import numpy as np

    if isinstance(y, float):
        return True
    dtype = getattr(y, "dtype", None)
    if dtype is None:
        return False
    return bool(getattr(dtype, "is_floating_point", False)) or (
        isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating)
    )


def _target_row(y, regression: bool, where: str):
    import numpy as np

    if not regression:
        return int(y)
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    try:
        return np.asarray(y, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise UserInputError(f"{where}: y is {type(y).__name__}, not a regression target") from None


def _labels_and_digest(name: str, dataset, digest, source: str, regression: bool):
    """Labels (or regression target rows) of one dataset; its content goes into `digest`
    unless it brings a fingerprint."""
    import numpy as np

    targets = getattr(dataset, "targets", None)
    fingerprint = getattr(dataset, "fingerprint", None)
    dtype = np.float32 if regression else np.int64
    if isinstance(fingerprint, str) and targets is not None and len(targets) == len(dataset):
        digest.update(f"{name}:{fingerprint}".encode())
        known = np.asarray(targets, dtype=dtype)
        return known.reshape(len(dataset), -1) if regression else known
    rows = []
    for row in range(len(dataset)):
        item = dataset[row]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise UserInputError(f"{source}: {name}[{row}] is not an (x, y) pair")
        x = _as_tensor(item[0])
        rows.append(_target_row(item[1], regression, f"{source}: {name}[{row}]"))
        digest.update(x.numpy().tobytes())
    if regression:
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise UserInputError(
                f"{source}: {name}: targets have {sorted(widths)} values; every y must have "
                "the same number of outputs"
            )
    labels = np.asarray(rows, dtype=dtype)
    digest.update(labels.tobytes())
    return labels


@DATA_SOURCES.register("python")
def python_source(argument: str, context: SourceContext) -> SampleTable:
    import numpy as np

    source = f"{context.what} {argument}"
    function = load_callable(argument, context.what, context.base_dir)
    try:
        result = function()
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(f"{source}: calling it failed: {type(exc).__name__}: {exc}") from None
    named = _named_datasets(result, source)
    first = named[0][1][0]
    if not isinstance(first, (tuple, list)) or len(first) != 2:
        raise UserInputError(f"{source}: items must be (x, y) pairs")
    shape = tuple(_as_tensor(first[0]).shape)
    if len(shape) != 3:
        raise UserInputError(
            f"{source}: a sample x has shape {shape}; expected C x H x W (a 3-d tensor)"
        )
    datasets = [dataset for _, dataset in named]
    offsets = np.cumsum([0] + [len(d) for d in datasets])[:-1]
    rows = DatasetRows(datasets, offsets, shape, source)
    digest = hashlib.sha256(argument.encode())
    regression = is_float_target(first[1])
    labels, assignment = [], []
    for name, dataset in named:
        part_labels = _labels_and_digest(name, dataset, digest, source, regression)
        if name == "unlabeled":
            part_labels[:] = np.nan if regression else -1
        labels.append(part_labels)
        assignment.append(np.full(len(dataset), SPLIT_KEYS.get(name, TRAIN), np.int8))
    targets = None
    if regression:
        widths = {part.shape[1] for part in labels}
        if len(widths) != 1:
            raise UserInputError(
                f"{source}: the datasets give {sorted(widths)} outputs per sample; all must "
                "give the same number"
            )
        all_labels, targets = regression_targets(np.concatenate(labels))
    else:
        all_labels = np.concatenate(labels)
    if all_labels.min() < -1:
        raise UserInputError(f"{source}: label {all_labels.min()}; use -1 for unlabeled")
    return SampleTable(
        source=source,
        labels=all_labels,
        read=rows,
        identity=f"python:{digest.hexdigest()}",
        facts=ImageFacts(
            channels=shape[0],
            height=shape[1],
            width=shape[2],
            kind="ready",
            channel_order={1: "gray", 3: "rgb"}.get(shape[0], "as-is"),
        ),
        assignment=None if named[0][0] == "all" else np.concatenate(assignment),
        class_names=_class_names(datasets[0]),
        targets=targets,
    )


def _class_names(dataset) -> list[str] | None:
    classes = getattr(dataset, "classes", None)
    return [str(c) for c in classes] if isinstance(classes, (list, tuple)) else None
