"""`npz:FILE`: images and labels as numpy arrays in one .npz file (read without unpickling).

Arrays: `x` (N x H x W, N x H x W x C or N x C x H x W; uint8 or float) and `y` (N integer
labels, -1 for unlabeled samples; or float regression targets, N or N x K, NaN for
unlabeled). Optional: `x_val`/`y_val` and `x_test`/`y_test` (the splits; missing ones are
split off the training data), `x_unlabeled` (more unlabeled training data), `labels` (class
names in label order; for regression, the outputs' names). Without `y`, every sample of `x`
is unlabeled. The arrays are held in memory as stored (uint8 stays uint8); samples are
preprocessed when a batch asks for them.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

PARTS = (("x", "y", TRAIN), ("x_val", "y_val", VAL), ("x_test", "y_test", TEST))
KNOWN = {"x", "y", "x_val", "y_val", "x_test", "y_test", "x_unlabeled", "labels"}


@dataclass
class ArrayRows:
    """Reads sample i from whichever array holds it, as H x W x C (a view, no copy)."""

    arrays: list[np.ndarray]
    offsets: np.ndarray  # start row of each array
    channels_first: bool

    def __call__(self, index: int):
        import numpy as np

        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        sample = self.arrays[part][index - int(self.offsets[part])]
        if sample.ndim == 3 and self.channels_first:
            sample = sample.transpose(1, 2, 0)
        return sample


def _load(path: Path, what: str) -> dict[str, np.ndarray]:
    import numpy as np

    if not path.is_file():
        raise UserInputError(f"{what}: no such file {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise UserInputError(
                f"{what}: {path} holds object arrays, which only unpickling could read; "
                "refused (unpickling can run code). Store plain numeric arrays"
            ) from None
        raise UserInputError(f"{what}: {path}: not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserInputError(f"{what}: {path}: not a readable .npz file ({exc})") from None


def _layout(x: np.ndarray, hint: str | None, path: Path, what: str) -> tuple[bool, int]:
    """(channels_first, channels) of an image array."""
    if x.ndim == 3:
        return False, 1
    if x.ndim != 4:
        raise UserInputError(
            f"{what}: {path}: array x has shape {x.shape}; expected N x H x W, N x H x W x C "
            "or N x C x H x W"
        )
    wanted = {"gray": 1, "rgb": 3, "bgr": 3}.get(hint or "")
    if wanted is not None and (x.shape[1] == wanted) != (x.shape[3] == wanted):
        return x.shape[1] == wanted, wanted
    channels_first = x.shape[1] < x.shape[3]  # channels are fewer than pixels along a side
    return channels_first, x.shape[1] if channels_first else x.shape[3]


@DATA_SOURCES.register("npz")
def npz_source(argument: str, context: SourceContext) -> SampleTable:
    import numpy as np

    path = context.path(argument)
    what = context.what
    arrays = _load(path, what)
    unknown = sorted(set(arrays) - KNOWN)
    if unknown:
        raise UserInputError(
            f"{what}: {path}: unknown arrays {', '.join(unknown)} "
            f"(known: {', '.join(sorted(KNOWN))})"
        )
    if "x" not in arrays:
        raise UserInputError(f"{what}: {path}: no array x (the training images)")
    channels_first, channels = _layout(arrays["x"], context.channel_order, path, what)
    sample_shape = arrays["x"].shape[1:]
    regression = any(
        np.issubdtype(arrays[y_name].dtype, np.floating)
        for _, y_name, _ in PARTS
        if y_name in arrays
    )
    parts, labels, assignment = [], [], []
    for x_name, y_name, split in PARTS:
        if x_name not in arrays:
            if y_name in arrays:
                raise UserInputError(f"{what}: {path}: {y_name} without {x_name}")
            continue
        x = arrays[x_name]
        y = arrays.get(y_name)
        if y is None and split != TRAIN:
            raise UserInputError(f"{what}: {path}: {x_name} needs labels {y_name}")
        parts.append((x_name, x))
        assignment.append(np.full(len(x), split, np.int8))
        if regression:
            labels.append(_targets(y, len(x), y_name, path, what))
            continue
        if y is None:
            y = np.full(len(x), -1, np.int64)
        labels.append(_labels(y, len(x), y_name, path, what))
    if "x_unlabeled" in arrays:
        x = arrays["x_unlabeled"]
        parts.append(("x_unlabeled", x))
        labels.append(
            _targets(None, len(x), "", path, what) if regression else np.full(len(x), -1, np.int64)
        )
        assignment.append(np.full(len(x), TRAIN, np.int8))
    for name, x in parts:
        if x.shape[1:] != sample_shape or x.dtype != arrays["x"].dtype:
            raise UserInputError(
                f"{what}: {path}: {name} is {x.dtype} {x.shape[1:]} per sample but x is "
                f"{arrays['x'].dtype} {sample_shape}; every image array must match"
            )
    kind = _kind(arrays["x"], path, what)
    targets = None
    if regression:
        all_labels, targets = regression_targets(_aligned(labels, path, what))
        names = _output_names(arrays.get("labels"), targets.shape[1], path, what)
    else:
        all_labels = np.concatenate(labels)
        names = _class_names(arrays.get("labels"), all_labels, path, what)
    height, width = (sample_shape[1:] if channels_first else sample_shape[:2])[:2]
    given = np.concatenate(assignment)
    only_train = bool((given == TRAIN).all())
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    offsets = np.cumsum([0] + [len(x) for _, x in parts])[:-1]
    order = context.channel_order if context.channel_order else None
    return SampleTable(
        source=f"npz:{path}",
        labels=all_labels,
        read=ArrayRows([x for _, x in parts], offsets, channels_first),
        identity=f"npz:{digest.hexdigest()}",
        facts=ImageFacts(
            channels=channels,
            height=int(height),
            width=int(width),
            kind=kind,
            channel_order=order or {1: "gray", 3: "rgb"}.get(channels, "as-is"),
        ),
        assignment=None if only_train else given,
        class_names=names,
        targets=targets,
    )


def _labels(y: np.ndarray, count: int, name: str, path: Path, what: str) -> np.ndarray:
    import numpy as np

    if y.ndim != 1 or len(y) != count or not np.issubdtype(y.dtype, np.integer):
        raise UserInputError(
            f"{what}: {path}: {name} must be {count} integer labels (one per image), got "
            f"{y.dtype} {y.shape}"
        )
    if len(y) and y.min() < -1:
        raise UserInputError(f"{what}: {path}: {name} has label {y.min()}; use -1 for unlabeled")
    return y.astype(np.int64)


def _targets(y, count: int, name: str, path: Path, what: str) -> np.ndarray:
    """Regression targets of one part as count x K float32 (None: unlabeled, K unknown yet)."""
    import numpy as np

    if y is None:
        return np.full((count, 0), np.nan, np.float32)
    if len(y) != count or y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.number):
        raise UserInputError(
            f"{what}: {path}: {name} must be {count} regression targets (N or N x K numbers, "
            f"one row per image), got {y.dtype} {y.shape}"
        )
    return np.asarray(y, np.float32).reshape(count, -1)


def _aligned(parts: list[np.ndarray], path: Path, what: str) -> np.ndarray:
    """Every part's targets with the same K outputs (unlabeled parts filled with NaN)."""
    import numpy as np

    widths = {part.shape[1] for part in parts if part.shape[1]}
    if len(widths) != 1:
        raise UserInputError(
            f"{what}: {path}: the target arrays give {sorted(widths) or 'no'} outputs per "
            "sample; every y array must give the same number"
        )
    (width,) = widths
    return np.concatenate(
        [
            part if part.shape[1] else np.full((len(part), width), np.nan, np.float32)
            for part in parts
        ]
    )


def _output_names(names, outputs: int, path: Path, what: str) -> list[str]:
    if names is None:
        return [f"y{i}" for i in range(outputs)] if outputs > 1 else ["y"]
    names = [str(n) for n in names.tolist()]
    if len(names) != outputs:
        raise UserInputError(
            f"{what}: {path}: labels names {len(names)} outputs but y gives {outputs} per sample"
        )
    return names


def _kind(x: np.ndarray, path: Path, what: str) -> str:
    import numpy as np

    if x.dtype == np.uint8:
        return "uint8"
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        return "float"
    raise UserInputError(f"{what}: {path}: x is {x.dtype}; expected uint8 or float images")


def _class_names(names, labels: np.ndarray, path: Path, what: str) -> list[str] | None:
    count = int(labels.max()) + 1 if len(labels) else 0
    if names is None:
        return None
    names = [str(n) for n in names.tolist()]
    if len(names) < count:
        raise UserInputError(
            f"{what}: {path}: labels names {len(names)} classes but y uses {count}"
        )
    return names
