"""Teacher forms (TEACHER_SOURCES): the built-in ResNet trained here, the user's PyTorch module
(`FILE.py:FN` / `package.module:FN` + weights), or an ONNX file run with onnxruntime.

Each form checks what it can before training starts (`prepare`: files exist, weights match,
the teacher runs on a batch of the data and gives one logit per class) and produces the
`Teacher` later (`load`: trains or measures its accuracy on the task's splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edgedistill.errors import UserInputError
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.registry import Registry
from edgedistill.tasks.teacher import Teacher

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe, TeacherSpec

CHECK_BATCH = 4  # samples run through a user's teacher before training, to check its output


@dataclass(frozen=True)
class TeacherNames:
    """How to name the teacher settings in messages: flags, or the recipe's fields."""

    source: str = "--teacher"
    weights: str = "--teacher-weights"


class PreparedTeacher(Protocol):
    form: str
    notes: list[str]

    def load(self, seed: int = 0, progress: ProgressFn = no_progress) -> Teacher: ...


class TeacherForm(Protocol):
    def claims(self, spec: TeacherSpec) -> bool: ...

    def prepare(
        self, recipe: TaskRecipe, data: TaskData, names: TeacherNames
    ) -> PreparedTeacher: ...


TEACHER_SOURCES: Registry[TeacherForm] = Registry("teacher form")


def prepare_teacher(
    recipe: TaskRecipe, data: TaskData, names: TeacherNames = TeacherNames()
) -> PreparedTeacher:
    """The form that claims the recipe's teacher, prepared (checked) on the task's data."""
    import edgedistill.tasks.teacher_forms  # noqa: F401  (each module registers its form)

    forms = [TEACHER_SOURCES.get(name) for name in TEACHER_SOURCES]
    claiming = [form for form in forms if form.claims(recipe.teacher)]
    if len(claiming) != 1:
        raise UserInputError(
            f"{names.source}: cannot tell the teacher form of {recipe.teacher.source!r}; use "
            "FILE.py:FN, package.module:FN or FILE.onnx"
        )
    return claiming[0].prepare(recipe, data, names)


@dataclass
class BuiltinPrepared:
    """The recipe's built-in architecture: trained on first use, then cached."""

    recipe: TaskRecipe
    data: TaskData
    form: str = "builtin"
    notes: list[str] = field(default_factory=list)

    def load(self, seed: int = 0, progress: ProgressFn = no_progress) -> Teacher:
        from edgedistill.tasks.teacher import builtin_teacher

        return builtin_teacher(self.recipe, self.data, seed=seed, progress=progress)


class BuiltinForm:
    def claims(self, spec: TeacherSpec) -> bool:
        return spec.source is None

    def prepare(self, recipe: TaskRecipe, data: TaskData, names: TeacherNames) -> BuiltinPrepared:
        return BuiltinPrepared(recipe, data)


TEACHER_SOURCES.add("builtin", BuiltinForm())


@dataclass
class ReadyTeacher:
    """A teacher that exists already (the user's): nothing to train, accuracy to measure."""

    model: nn.Module
    data: TaskData
    form: str
    source: str
    cache_path: str
    logits_only: bool = False
    onnx_path: str | None = None
    params: int | None = None
    macs: int | None = None
    notes: list[str] = field(default_factory=list)

    def load(self, seed: int = 0, progress: ProgressFn = no_progress) -> Teacher:
        from edgedistill.distill.trainer import accuracy

        progress("teacher", 0, 2, "val accuracy")
        val_accuracy = accuracy(self.model, self.data.val)
        progress("teacher", 1, 2, "test accuracy")
        test_accuracy = accuracy(self.model, self.data.test)
        progress("teacher", 2, 2, f"test acc {test_accuracy:.3f}")
        return Teacher(
            self.model,
            test_accuracy,
            val_accuracy,
            self.cache_path,
            trained_now=False,
            form=self.form,
            source=self.source,
            logits_only=self.logits_only,
            onnx_path=self.onnx_path,
            params=self.params,
            macs=self.macs,
        )


def check_logits(model, data: TaskData, num_classes: int, what: str) -> None:
    """Run the teacher on a few samples: it must give a (batch, num_classes) float tensor."""
    import torch

    from edgedistill.tasks.data import iter_batches

    x, _ = next(iter(iter_batches(data.val, batch_size=CHECK_BATCH, limit=CHECK_BATCH)))
    try:
        with torch.no_grad():
            output = model(x)
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(
            f"{what}: running the teacher on a batch of the data ({tuple(x.shape)}, N x C x H "
            f"x W) failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(output, torch.Tensor):
        raise UserInputError(
            f"{what}: the teacher returns a {type(output).__name__}; it must return one logits "
            "tensor (batch x classes)"
        )
    if output.ndim != 2 or output.shape[0] != len(x):
        raise UserInputError(
            f"{what}: the teacher's output has shape {tuple(output.shape)} for a batch of "
            f"{len(x)}; expected ({len(x)}, {num_classes}) logits"
        )
    if output.shape[1] != num_classes:
        raise UserInputError(
            f"{what}: the teacher gives {output.shape[1]} logits per sample but the task has "
            f"{num_classes} classes; the teacher's output width must equal the number of labels"
        )


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode, no gradients: a teacher never changes."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def teacher_cost(teacher: Teacher, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(params, MACs) of the teacher: from the ONNX graph, or traced from the module."""
    if teacher.params is not None and teacher.macs is not None:
        return teacher.params, teacher.macs
    from edgedistill.latency.costs import model_cost

    cost = model_cost(teacher.model, input_shape)
    return cost.params, cost.macs


def teacher_onnx(teacher: Teacher, example: torch.Tensor, folder: Path) -> Path:
    """An ONNX file of the teacher to time: the user's own file, or an export of the module."""
    if teacher.onnx_path is not None:
        return Path(teacher.onnx_path)
    from edgedistill.export import EXPORTERS

    return Path(
        EXPORTERS.get("onnx").export(teacher.model, example, folder / "teacher.onnx", "fp32").path
    )
