"""Output matching: mean squared error (or Huber) between student and teacher outputs.

For regression tasks this is the distillation loss itself: the teacher's outputs are the
targets, mixed with the true targets by `alpha` (1: teacher only). On classifiers it is logit
matching (Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?", arXiv:1312.6184); add a
`ce` term to also learn from the labels. `huber_delta` swaps the squared error for the Huber
loss (quadratic within delta, linear beyond): outliers in the targets pull less.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams
from edgedistill.tasks.kinds import kind_of


class MSEParams(LossParams):
    alpha: float = Field(
        1.0, ge=0, le=1, description="weight of the teacher's outputs; the rest on the labels"
    )
    huber_delta: float | None = Field(
        None, gt=0, description="Huber loss with this delta instead of squared error"
    )


@dataclass(frozen=True)
class MSETerm:
    alpha: float = 1.0
    huber_delta: float | None = None
    needs_teacher: bool = True
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError("mse compares outputs, not layers")

    def __call__(self, inputs: LossInputs):
        import torch.nn.functional as F

        student, teacher = inputs.student_logits, inputs.teacher_logits[0]
        if self.huber_delta is None:
            matched = F.mse_loss(student, teacher)
        else:
            matched = F.huber_loss(student, teacher, delta=self.huber_delta)
        if self.alpha == 1:
            return matched
        hard = kind_of(inputs.labels).hard_loss(student, inputs.labels, 0.0, self.huber_delta)
        return self.alpha * matched + (1 - self.alpha) * hard


@LOSSES.register("mse")
class MSEFamily:
    name = "mse"
    kind = "term"
    needs_teacher = True
    task_types = ("classification", "regression")
    params_model = MSEParams

    def build(self, params: MSEParams) -> MSETerm:
        return MSETerm(params.alpha, params.huber_delta)
