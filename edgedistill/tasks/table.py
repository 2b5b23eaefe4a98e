"""What a data adapter hands over: an indexed table of raw samples, and lazy Datasets over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import torch

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")
UNLABELED = -1


@dataclass(frozen=True)
class ImageFacts:
    """What the samples look like before preprocessing."""

    channels: int
    height: int | None  # None: samples differ in size (each is resized by preprocessing)
    width: int | None
    # uint8 / float: raw values the recipe's preprocessing turns into model inputs;
    # ready: samples are model inputs already (a Python dataset applies its own transform)
    kind: Literal["uint8", "float", "ready"]
    channel_order: str  # gray, rgb, bgr, as-is
    # the raw value of full brightness; None: 255 for uint8 samples, 1.0 for float ones
    full_scale: float | None = None

    @property
    def unit_scale(self) -> float:
        """The multiplier that brings raw values to [0, 1]."""
        return 1.0 / (self.full_scale or (255.0 if self.kind == "uint8" else 1.0))


@dataclass
class SampleTable:
    """Every sample a source holds, addressed by index.

    `read(i)` returns sample i raw (H x W [x C] array) or, for kind "ready", the model input
    (C x H x W tensor). `labels[i]` is its class, -1 when unlabeled. A regression source gives
    `targets` (N x K float32, NaN rows unlabeled) and labels 0 (labeled) or -1, so that splits
    treat it as one class. `assignment[i]` is the
    split the source puts it in (0 train, 1 val, 2 test) or None when the source gives no split.
    `identity` changes whenever the samples change (file list, sizes, mtimes, or bytes).
    """

    source: str
    labels: np.ndarray
    read: Callable[[int], Any]
    identity: str
    facts: ImageFacts
    assignment: np.ndarray | None = None
    class_names: list[str] | None = None  # regression: the outputs' names
    notes: list[str] = field(default_factory=list)
    targets: np.ndarray | None = None  # regression: N x K float32

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def outputs(self) -> int | None:
        """Regression: the number of outputs; None for classification."""
        return None if self.targets is None else int(self.targets.shape[1])


def regression_targets(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, targets) for float targets y (N or N x K): labels 0, or -1 where a row has a
    NaN (unlabeled); targets as N x K float32."""
    import numpy as np

    targets = np.ascontiguousarray(y, dtype=np.float32).reshape(len(y), -1)
    labels = np.where(np.isnan(targets).any(axis=1), -1, 0).astype(np.int64)
    return labels, targets


class TableDataset:
    """A map-style torch Dataset over some rows of a table, decoded when an item is asked for.

    `workers` is the number of loader processes `iter_batches` (and trainers) should use;
    `labels` gives every label without decoding a single image.
    """

    def __init__(
        self,
        table: SampleTable,
        indices: np.ndarray,
        transform: Callable[[Any], torch.Tensor] | None,
        workers: int = 0,
    ) -> None:
        self.table = table
        self.indices = indices
        self.transform = transform
        self.workers = workers

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        import torch

        row = int(self.indices[index])
        sample = self.table.read(row)
        x = self.transform(sample) if self.transform is not None else sample
        if self.table.targets is not None:
            return x, torch.from_numpy(self.table.targets[row].copy())
        return x, torch.tensor(int(self.table.labels[row]), dtype=torch.int64)

    @property
    def labels(self):
        """Every target without decoding an image: class labels, or regression rows."""
        if self.table.targets is not None:
            return self.table.targets[self.indices]
        return self.table.labels[self.indices]
