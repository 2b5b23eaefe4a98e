"""Knowledge distillation with soft targets (Hinton, Vinyals & Dean 2015, arXiv:1503.02531).

loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y).
The T^2 factor keeps the soft term's gradient magnitude independent of the temperature. The
soft term uses every sample, labelled or not; the hard term only the labelled ones. With several
teachers, `kd` follows the first; `multi-teacher` combines them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._common import labeled_cross_entropy, soft_target_kl
from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams


class KDParams(LossParams):
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the soft-target term")


@dataclass(frozen=True)
class KDTerm:
    temperature: float
    alpha: float
    needs_teacher: bool = True
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError("kd compares no layers")

    def __call__(self, inputs: LossInputs):
        soft = soft_target_kl(inputs.student_logits, inputs.teacher_logits[0], self.temperature)
        if self.alpha == 1:
            return soft
        hard = labeled_cross_entropy(inputs.student_logits, inputs.labels)
        return self.alpha * soft + (1 - self.alpha) * hard


@LOSSES.register("kd")
class KDFamily:
    name = "kd"
    kind = "term"
    task_types = ("classification",)
    needs_teacher = True
    params_model = KDParams

    def build(self, params: KDParams) -> KDTerm:
        return KDTerm(params.temperature, params.alpha)
