"""Soft targets from several teachers (Hinton et al. 2015, section 2; You, Xu, Xu & Tao 2017,
"Learning from Multiple Teacher Networks", KDD).

The teachers' softened distributions softmax(t_i / T) are averaged with the given weights
(equal by default); the student matches the mixture as in `kd`:
loss = alpha * T^2 * KL(sum_i w_i softmax(t_i/T) || softmax(s/T)) + (1 - alpha) * CE(s, y).
Teachers may have any architectures: only their logits are used.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator

from edgedistill.distill.losses._common import labeled_cross_entropy
from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams


class MultiTeacherParams(LossParams):
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1)
    teacher_weights: list[float] | None = Field(
        None, description="one non-negative weight per teacher, in --teacher order (normalised)"
    )

    @field_validator("teacher_weights")
    @classmethod
    def _non_negative(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and (any(w < 0 for w in weights) or sum(weights) <= 0):
            raise ValueError("teacher_weights must be non-negative with a positive sum")
        return weights


def mixture_of_soft_targets(teacher_logits, weights: list[float], temperature: float):
    """sum_i w_i softmax(t_i / T) with the weights normalised to sum to one."""
    total = sum(weights)
    mixture = 0.0
    for logits, weight in zip(teacher_logits, weights, strict=True):
        mixture = mixture + (weight / total) * (logits / temperature).softmax(dim=1)
    return mixture


@dataclass(frozen=True)
class MultiTeacherTerm:
    temperature: float
    alpha: float
    teacher_weights: tuple[float, ...] | None
    needs_teacher: bool = True
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError("multi-teacher compares no layers")

    def check_teachers(self, count: int) -> None:
        if self.teacher_weights is not None and len(self.teacher_weights) != count:
            raise ValueError(
                f"multi-teacher: teacher_weights has {len(self.teacher_weights)} entries for "
                f"{count} teacher(s)"
            )

    def __call__(self, inputs: LossInputs):
        import torch.nn.functional as F

        count = len(inputs.teacher_logits)
        weights = list(self.teacher_weights or [1.0] * count)
        target = mixture_of_soft_targets(inputs.teacher_logits, weights, self.temperature)
        log_student = F.log_softmax(inputs.student_logits / self.temperature, dim=1)
        soft = F.kl_div(log_student, target, reduction="batchmean") * self.temperature**2
        if self.alpha == 1:
            return soft
        hard = labeled_cross_entropy(inputs.student_logits, inputs.labels)
        return self.alpha * soft + (1 - self.alpha) * hard


@LOSSES.register("multi-teacher")
class MultiTeacherFamily:
    name = "multi-teacher"
    kind = "term"
    task_types = ("classification",)
    needs_teacher = True
    params_model = MultiTeacherParams

    def build(self, params: MultiTeacherParams) -> MultiTeacherTerm:
        weights = tuple(params.teacher_weights) if params.teacher_weights is not None else None
        return MultiTeacherTerm(params.temperature, params.alpha, weights)
