"""Teachers a distillation run can name (`--teacher`, repeatable; recipe `distill.teachers`):

- `task`: the task's own teacher (the built-in one is trained on first use and cached);
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
            f"{flag} {ref!r}: expected `task` (the task's teacher) or a folder written by "
            "`edgedistill distill --out` (student.json and student.safetensors)"
        )


def architecture(ref: str, recipe: TaskRecipe, input_shape, num_classes: int) -> nn.Module:
    """The teacher's module without training it (trained weights where they are at hand), to
    check layer names and shapes before any training."""
    if ref == TASK:
        from edgedistill.tasks.teacher import build_resnet

        return build_resnet(recipe.teacher, input_shape[0], num_classes)
    return _load_checkpoint(ref, input_shape, num_classes)


def load(
    ref: str,
    recipe: TaskRecipe,
    data: TaskData,
    progress: ProgressFn = no_progress,
) -> LoadedTeacher:
    from edgedistill.distill.trainer import accuracy

    num_classes = len(recipe.labels)
    if ref == TASK:
        from edgedistill.tasks.teacher import builtin_teacher

        teacher = builtin_teacher(recipe, data, seed=0, progress=progress)
        return LoadedTeacher(
            TASK, teacher.model, teacher.test_accuracy, getattr(teacher, "logits_only", False)
        )
    model = _load_checkpoint(ref, data.input_shape, num_classes)
    return LoadedTeacher(ref, model, accuracy(model, data.test))


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
