"""The teacher form registry (TEACHER_FORMS) and what every form shares.

Forms: the built-in ResNet trained here (builtin.py), the user's PyTorch module
(`FILE.py:FN` / `package.module:FN` + weights, python_module.py), an ONNX file run with
onnxruntime (onnx_model.py), and a student of an earlier run (earlier_run.py).

Each form checks what it can before training starts (`prepare`: files exist, weights match,
the teacher runs on a batch of the data and gives one logit per class) and produces the
`Teacher` later (`load`: measures its accuracy on the task's splits; the built-in one is
trained first by `edgedistill.distill.teacher_training` when `needs_training` says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from edgedistill.errors import UserInputError
from edgedistill.inputs import shape_words
from edgedistill.latency.costs import model_cost
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.registry import Registry
from edgedistill.tasks.data import iter_batches
from edgedistill.tasks.evaluate import score
from edgedistill.tasks.task import TeacherNames
from edgedistill.teachers.record import Teacher

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe, TeacherSpec

CHECK_BATCH = 4  # samples run through a user's teacher before training, to check its output


class PreparedTeacher(Protocol):
    form: str
    notes: list[str]

    def needs_training(self, seed: int = 0) -> bool: ...

    def architecture(self) -> nn.Module:
        """The module, trained or not, to check layer names and shapes before training."""
        ...

    def load(self, seed: int = 0, progress: ProgressFn = no_progress) -> Teacher: ...


class TeacherForm(Protocol):
    def claims(self, spec: TeacherSpec) -> bool: ...

    def prepare(
        self, recipe: TaskRecipe, data: TaskData, names: TeacherNames
    ) -> PreparedTeacher: ...


TEACHER_FORMS: Registry[TeacherForm] = Registry("teacher form", instances=True)


def prepare_teacher(
    recipe: TaskRecipe, data: TaskData, names: TeacherNames = TeacherNames()
) -> PreparedTeacher:
    """The form that claims the recipe's teacher, prepared (checked) on the task's data."""
    forms = [TEACHER_FORMS.get(name) for name in TEACHER_FORMS]
    claiming = [form for form in forms if form.claims(recipe.teacher)]
    if len(claiming) != 1:
        raise UserInputError(
            f"{names.source}: cannot tell the teacher form of {recipe.teacher.source!r}; use "
            "FILE.py:FN, package.module:FN, FILE.onnx or hf:DIR"
        )
    return claiming[0].prepare(recipe, data, names)


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

    def needs_training(self, seed: int = 0) -> bool:
        return False

    def architecture(self) -> nn.Module:
        return self.model

    def load(self, seed: int = 0, progress: ProgressFn = no_progress) -> Teacher:
        progress("teacher", 0, 2, "val score")
        val_accuracy = score(self.model, self.data.val)
        progress("teacher", 1, 2, "test accuracy")
        test_accuracy = score(self.model, self.data.test)
        progress("teacher", 2, 2, f"test score {test_accuracy:.3f}")
        if self.params is None or self.macs is None:
            cost = model_cost(self.model, self.data.input_shape)
            self.params, self.macs = cost.params, cost.macs
        return Teacher(
            name="task",
            model=self.model,
            params=self.params,
            macs=self.macs,
            test_accuracy=test_accuracy,
            val_accuracy=val_accuracy,
            form=self.form,
            source=self.source,
            cache_path=self.cache_path,
            logits_only=self.logits_only,
            onnx_path=self.onnx_path,
        )


def check_logits(model, data: TaskData, num_classes: int, what: str) -> None:
    """Run the teacher on a few samples: it must give a (batch, num_classes) float tensor."""
    import torch

    x, _ = next(iter(iter_batches(data.val, batch_size=CHECK_BATCH, limit=CHECK_BATCH)))
    try:
        with torch.no_grad():
            output = model(x)
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(
            f"{what}: running the teacher on a batch of the data ({tuple(x.shape)}, N x "
            f"{shape_words(data.input_shape)}) failed: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
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
            f"{what}: the teacher gives {output.shape[1]} outputs per sample but the task has "
            f"{num_classes} classes (outputs, for regression); the teacher's output width must "
            "equal the number of labels"
        )


def input_layout(spec: TeacherSpec) -> str:
    """`nchw`, or `nhwc` when the teacher's declared preprocessing says it takes channels last."""
    return spec.preprocess.layout if spec.preprocess is not None else "nchw"


def channels_last_input(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C x H x W -> H x W x C."""
    channels, height, width = shape
    return (height, width, channels)


def fed_channels_last(model: nn.Module) -> nn.Module:
    """teacher(x) for N x C x H x W batches, for a model that takes N x H x W x C."""
    from torch import nn

    class ChannelsLastInput(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.permute(0, 2, 3, 1).contiguous())

    return ChannelsLastInput(model)


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode, no gradients: a teacher never changes."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
