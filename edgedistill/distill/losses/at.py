"""Attention transfer (Zagoruyko & Komodakis 2017, "Paying More Attention to Attention",
arXiv:1612.03928).

A feature map's spatial attention is the channel mean of |a|^p, flattened and L2-normalised;
the loss is beta/2 times the mean squared difference of student and teacher attention, summed
over the layer pairs (the authors' code, with p = 2 and beta = 1000). Channel counts may
differ; a larger map is average-pooled down to the smaller one when the sizes are multiples.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._common import require_rank, spatial_ratio
from edgedistill.distill.losses._pairs import LayerPair, as_tuples, match_teacher
from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams


class ATParams(LossParams):
    pairs: list[LayerPair] = Field(default_factory=list)
    p: float = Field(2.0, gt=0, description="exponent of the attention map")
    beta: float = Field(1000.0, ge=0, description="the loss is beta/2 * sum of pair terms")


def attention_map(feature, p: float):
    """N x (H*W) L2-normalised spatial attention of a N x C x H x W map."""
    import torch.nn.functional as F

    return F.normalize(feature.abs().pow(p).mean(dim=1).flatten(1), dim=1)


@dataclass(frozen=True)
class ATTerm:
    pairs: tuple[tuple[str, str], ...]
    p: float
    beta: float
    needs_teacher: bool = True

    def adapter(self, student_shape, teacher_shape):
        from torch import nn

        require_rank(student_shape, (3,), "student layer")
        require_rank(teacher_shape, (3,), "teacher layer")
        student_factor, _ = spatial_ratio(student_shape, teacher_shape)
        return nn.AvgPool2d(student_factor) if student_factor > 1 else nn.Identity()

    def __call__(self, inputs: LossInputs):
        total = 0.0
        for student, teacher in inputs.features:
            teacher = match_teacher(student, teacher)
            difference = attention_map(student, self.p) - attention_map(teacher, self.p)
            total = total + difference.pow(2).mean()
        return self.beta / 2 * total


@LOSSES.register("at")
class ATFamily:
    name = "at"
    kind = "term"
    task_types = ("classification", "regression")
    needs_teacher = True
    params_model = ATParams

    def build(self, params: ATParams) -> ATTerm:
        return ATTerm(as_tuples(params.pairs), params.p, params.beta)
