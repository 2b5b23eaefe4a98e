"""FitNets hint loss (Romero, Ballas, Kahou, Chassang, Gatta & Bengio 2015, arXiv:1412.6550).

The output of a student layer ("guided") is regressed onto a teacher layer ("hint") with a mean
squared error. When the widths differ a learned projection maps the student feature to the
teacher's (a 1x1 convolution for feature maps, a linear layer for vectors and tokens); a larger
map is average-pooled down to the smaller one when the sizes are integer multiples.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._common import require_rank, spatial_ratio
from edgedistill.distill.losses._pairs import LayerPair, as_tuples, match_teacher
from edgedistill.distill.losses._registry import LOSSES, LayerMismatch, LossInputs, LossParams


class FitNetParams(LossParams):
    pairs: list[LayerPair] = Field(
        default_factory=list, description="(student layer, teacher layer) pairs to match"
    )


def projection(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]):
    """Pooling and/or a learned projection taking the student feature to the teacher's shape."""
    from torch import nn

    require_rank(student_shape, (1, 2, 3), "student layer")
    if len(student_shape) != len(teacher_shape):
        raise LayerMismatch(
            f"student output {list(student_shape)} and teacher output {list(teacher_shape)} "
            "have different ranks"
        )
    if len(student_shape) == 3:
        student_factor, _ = spatial_ratio(student_shape, teacher_shape)
        layers: list[nn.Module] = []
        if student_factor > 1:
            layers.append(nn.AvgPool2d(student_factor))
        if student_shape[0] != teacher_shape[0]:
            layers.append(nn.Conv2d(student_shape[0], teacher_shape[0], 1, bias=False))
        if len(layers) > 1:
            return nn.Sequential(*layers)
        return layers[0] if layers else nn.Identity()
    if len(student_shape) == 2 and student_shape[0] != teacher_shape[0]:
        raise LayerMismatch(
            f"student tokens {list(student_shape)} and teacher tokens {list(teacher_shape)} "
            "differ in count"
        )
    if student_shape[-1] != teacher_shape[-1]:
        return nn.Linear(student_shape[-1], teacher_shape[-1], bias=False)
    return nn.Identity()


@dataclass(frozen=True)
class FitNetTerm:
    pairs: tuple[tuple[str, str], ...]
    needs_teacher: bool = True

    def adapter(self, student_shape, teacher_shape):
        return projection(student_shape, teacher_shape)

    def __call__(self, inputs: LossInputs):
        import torch.nn.functional as F

        losses = [
            F.mse_loss(student, match_teacher(student, teacher))
            for student, teacher in inputs.features
        ]
        return sum(losses) / len(losses)


@LOSSES.register("fitnet")
class FitNetFamily:
    name = "fitnet"
    kind = "term"
    task_types = ("classification", "regression")
    needs_teacher = True
    params_model = FitNetParams

    def build(self, params: FitNetParams) -> FitNetTerm:
        return FitNetTerm(as_tuples(params.pairs))
