"""Train / val / test indices: the split a source gives, completed by a seeded stratified split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.tasks.table import SPLIT_NAMES, TEST, TRAIN, VAL, SampleTable

if TYPE_CHECKING:
    import numpy as np

    from edgedistill.tasks.recipe import SplitSpec


def stratified_split(labels: np.ndarray, train: float, val: float, seed: int):
    """Positions of train / val / test with each class in the same proportions."""
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


def _holdout(rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int):
    """Split `rows` into (kept, held out) with `fraction` of each class held out."""
    kept, _, held = stratified_split(labels[rows], 1 - fraction, 0.0, seed)
    return rows[kept], rows[held]


def split_indices(table: SampleTable, spec: SplitSpec) -> tuple[dict[str, np.ndarray], dict]:
    """Rows of each split (unlabeled rows go to train) and a record of how they were made."""
    import numpy as np

    labels = table.labels
    unlabeled = np.flatnonzero(labels < 0)
    test_fraction = 1 - spec.train - spec.val
    if table.assignment is None:
        labeled = np.flatnonzero(labels >= 0)
        train, val, test = (
            labeled[p] for p in stratified_split(labels[labeled], spec.train, spec.val, spec.seed)
        )
        how = "random" if table.targets is not None else "stratified"
        method = f"{how} {spec.train:g}/{spec.val:g}/{test_fraction:g}, seed {spec.seed}"
    else:
        given = {
            name: np.flatnonzero((table.assignment == code) & (labels >= 0))
            for name, code in zip(SPLIT_NAMES, (TRAIN, VAL, TEST), strict=True)
        }
        for name in ("val", "test"):
            stray = np.flatnonzero((table.assignment == SPLIT_NAMES.index(name)) & (labels < 0))
            if len(stray):
                raise UserInputError(
                    f"{table.source}: the {name} split has {len(stray)} unlabeled samples; "
                    "only training data may be unlabeled"
                )
        train, val, test = given["train"], given["val"], given["test"]
        carved = []
        if not len(test):
            train, test = _holdout(train, labels, test_fraction, spec.seed)
            carved.append(f"test ({test_fraction:g})")
        if not len(val):
            train, val = _holdout(train, labels, spec.val / (spec.train + spec.val), spec.seed)
            carved.append(f"val ({spec.val:g})")
        method = "as given by the source"
        if carved:
            method += f"; {' and '.join(carved)} split off train, stratified, seed {spec.seed}"
    parts = {
        "train": np.sort(np.concatenate([train, unlabeled])),
        "val": np.sort(val),
        "test": np.sort(test),
    }
    _check(table, parts)
    record = {
        "method": method,
        "sizes": {name: int(len(rows)) for name, rows in parts.items()},
        "unlabeled_in_train": int(len(unlabeled)),
        "seed": spec.seed,
    }
    return parts, record


def _check(table: SampleTable, parts: dict[str, np.ndarray]) -> None:
    import numpy as np

    labels = table.labels
    classes = np.unique(labels[labels >= 0])
    if len(classes) < 2 and table.targets is None:
        raise UserInputError(
            f"{table.source}: found {len(classes)} labeled class"
            f"{'' if len(classes) == 1 else 'es'}; classification needs at least two"
        )
    train_labeled = parts["train"][labels[parts["train"]] >= 0]
    for name, rows in (("train", train_labeled), ("val", parts["val"]), ("test", parts["test"])):
        if not len(rows):
            raise UserInputError(
                f"{table.source}: the {name} split would be empty ({len(labels)} samples, "
                f"{len(classes)} classes); add samples, or give the split explicitly"
            )
