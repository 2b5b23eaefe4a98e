"""Teachers a distillation run can name (`--teacher`, repeatable; recipe `distill.teachers`):

- `task`: the task's own teacher: the recipe's (the built-in one is trained on first use and
  cached), or your own given as `--teacher FILE.py:FN | module:FN | FILE.onnx`;
- a folder written by `edgedistill distill --out` or a `fit` run's `checkpoint/` folder: a
  student trained earlier (any family), so teachers of different architectures can be combined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe

TASK = "task"


@dataclass
class LoadedTeacher:
    name: str
    model: nn.Module
    test_accuracy: float | None
    logits_only: bool = False  # no layers to hook (e.g. an ONNX teacher)
    params: int | None = None
    macs: int | None = None


def checkpoint_folder(ref: str) -> Path | None:
    """The folder holding student.json + student.safetensors that `ref` names, if any."""
    path = Path(ref)
    for folder in (path, path / "checkpoint"):
        if (folder / "student.json").is_file() and (folder / "student.safetensors").is_file():
            return folder
    return None


def check_ref(ref: str, flag: str = "--teacher") -> None:
    if ref != TASK and checkpoint_folder(ref) is None:
        raise UserInputError(
            f"{flag} {ref!r}: expected `task` (the task's teacher), a folder written by "
            "`edgedistill distill --out` (student.json and student.safetensors), or your own "
            "teacher (FILE.py:FN, package.module:FN, FILE.onnx)"
        )


def architecture(ref: str, prepared, recipe: TaskRecipe, input_shape, num_classes: int):
    """The teacher's module without training it (trained weights where they are at hand), to
    check layer names and shapes before any training."""
    if ref == TASK:
        model = getattr(prepared, "model", None)
        if model is not None:
            return model
        from edgedistill.tasks.teacher import build_resnet

        return build_resnet(recipe.teacher, input_shape[0], num_classes)
    return _load_checkpoint(ref, input_shape, num_classes)


def load(
    ref: str,
    prepared,
    data: TaskData,
    num_classes: int,
    progress: ProgressFn = no_progress,
) -> LoadedTeacher:
    """A teacher ready to distill from; the task's is trained first if it must be."""
    from edgedistill.distill.trainer import accuracy
    from edgedistill.latency.costs import model_cost

    if ref == TASK:
        from edgedistill.tasks.teacher_sources import teacher_cost

        teacher = prepared.load(seed=0, progress=progress)
        params, macs = teacher_cost(teacher, data.input_shape)
        return LoadedTeacher(
            TASK, teacher.model, teacher.test_accuracy, teacher.logits_only, params, macs
        )
    model = _load_checkpoint(ref, data.input_shape, num_classes)
    cost = model_cost(model, data.input_shape)
    return LoadedTeacher(ref, model, accuracy(model, data.test), False, cost.params, cost.macs)


def _load_checkpoint(ref: str, input_shape, num_classes: int) -> nn.Module:
    import json

    from safetensors.torch import load_file

    from edgedistill.students import Candidate, build_student

    folder = checkpoint_folder(ref)
    if folder is None:
        check_ref(ref)
        raise AssertionError  # check_ref raised
    meta = json.loads((folder / "student.json").read_text())
    if (
        list(meta.get("input_shape", [])) != list(input_shape)
        or meta.get("num_classes") != num_classes
    ):
        raise UserInputError(
            f"--teacher {ref}: it was trained for input {meta.get('input_shape')} and "
            f"{meta.get('num_classes')} classes; this task has {list(input_shape)} and "
            f"{num_classes}"
        )
    model = build_student(
        Candidate.parse(meta["spec"], f"{folder}/student.json"), input_shape, num_classes
    )
    try:
        model.load_state_dict(load_file(folder / "student.safetensors"))
    except RuntimeError as exc:
        raise UserInputError(f"--teacher {ref}: weights do not match the spec ({exc})") from None
    return model.eval()
