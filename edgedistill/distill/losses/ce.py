"""The loss on the labels alone: the no-teacher baseline, and how teachers are trained.

Cross-entropy on class labels; on regression targets, mean squared error. Samples without a
label (-1, or NaN targets) are skipped, so `ce` with `--labels-fraction` trains on the
labelled part only.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams
from edgedistill.tasks.kinds import kind_of


class CEParams(LossParams):
    label_smoothing: float = Field(0.0, ge=0, lt=1)


@dataclass(frozen=True)
class CrossEntropyTerm:
    label_smoothing: float = 0.0
    needs_teacher: bool = False
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError("ce compares no layers")

    def __call__(self, inputs: LossInputs):
        kind = kind_of(inputs.labels)
        return kind.hard_loss(inputs.student_logits, inputs.labels, self.label_smoothing)


@LOSSES.register("ce")
class CrossEntropyFamily:
    name = "ce"
    kind = "term"
    needs_teacher = False
    task_types = ("classification", "regression")
    params_model = CEParams

    def build(self, params: CEParams) -> CrossEntropyTerm:
        return CrossEntropyTerm(params.label_smoothing)

    def __call__(self, spec=None) -> CrossEntropyTerm:
        """The plain term with default parameters (how built-in teachers are trained)."""
        return CrossEntropyTerm()
