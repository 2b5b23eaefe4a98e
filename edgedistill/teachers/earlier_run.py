"""A student of an earlier run as a teacher: a folder written by `edgedistill distill --out`, or a
`fit` run (its `checkpoint/` folder). Any family, so teachers of different architectures can be
combined (`--teacher`, repeatable; recipe `distill.teachers`).

A run names its teachers by reference: `task` is the task's own teacher (the recipe's, or the
user's `--teacher FILE.py:FN | module:FN | FILE.onnx`), anything else an earlier run's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.latency.costs import model_cost
from edgedistill.students.checkpoint import (
    WEIGHTS_FILE,
    checkpoint_folder,
    load_student,
    read_checkpoint,
)
from edgedistill.tasks.evaluate import score
from edgedistill.teachers.forms import frozen
from edgedistill.teachers.record import Teacher
from edgedistill.weights import load_safetensors

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.tasks.data import TaskData

TASK = "task"


def is_earlier_run(ref: str) -> bool:
    return checkpoint_folder(Path(ref)) is not None


def check_ref(ref: str, flag: str = "--teacher") -> None:
    """`ref` names the task's teacher or an earlier run whose description and weights file
    are readable: checked when a run is planned, before it writes anything."""
    if ref == TASK:
        return
    if not is_earlier_run(ref):
        raise UserInputError(
            f"{flag} {ref!r}: expected `task` (the task's teacher), a folder written by "
            "`edgedistill distill --out` (student.json and student.safetensors), or your own "
            "teacher (FILE.py:FN, package.module:FN, FILE.onnx)"
        )
    checkpoint = read_checkpoint(Path(ref), flag)
    load_safetensors(checkpoint.folder / WEIGHTS_FILE, flag)  # a malformed file is refused now


def build_earlier_run(ref: str, input_shape, num_classes: int) -> nn.Module:
    """The earlier run's trained student, checked against this task's input and classes."""
    check_ref(ref)
    checkpoint = read_checkpoint(Path(ref), "--teacher")
    shape, classes = checkpoint.input_shape, checkpoint.num_classes
    if list(shape or []) != list(input_shape) or classes != num_classes:
        raise UserInputError(
            f"--teacher {ref}: it was trained for input {list(shape) if shape else None} and "
            f"{classes} classes; this task has {list(input_shape)} and {num_classes}"
        )
    return load_student(checkpoint, input_shape, num_classes, "--teacher")


def load_earlier_run(ref: str, data: TaskData, num_classes: int) -> Teacher:
    """A teacher ready to distill from, its accuracy measured on this task's test split."""
    model = frozen(build_earlier_run(ref, data.input_shape, num_classes))
    cost = model_cost(model, data.input_shape)
    return Teacher(
        name=ref,
        model=model,
        params=cost.params,
        macs=cost.macs,
        test_accuracy=score(model, data.test),
        form="earlier-run",
        source=ref,
        cache_path=str(checkpoint_folder(Path(ref))),
    )
