"""Attention-map matching for text students, layer to layer: KL divergence of each query's
attention distribution (MiniLM: Wang et al. 2020, arXiv:2002.10957, eq. 5) or their mean
squared difference (TinyBERT: Jiao et al. 2020, arXiv:1909.10351, eq. 7, on probabilities).

The maps are each layer's softmax probabilities, N x heads x L x L (in a TransformerStudent the
module `layers.{i}.attention.probs`). When the head counts differ, both sides are averaged over
their heads first. attention_kl = mean over samples, heads and query positions of
sum_k t_k log(t_k / s_k); keys the teacher gives no weight (padding) add nothing. Averaged over
the layer pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._pairs import LayerPair, as_tuples
from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams
from edgedistill.distill.losses._tokens import check_attention_shapes, matched_heads

TASK_TYPES = ("classification", "embedding")


class AttentionParams(LossParams):
    pairs: list[LayerPair] = Field(
        default_factory=list,
        description="(student, teacher) modules whose outputs are N x heads x L x L maps",
    )


def attention_kl(student, teacher):
    """KL(teacher || student) per query row, averaged over samples, heads and rows."""
    import torch

    student, teacher = matched_heads(student, teacher)
    floor = torch.finfo(student.dtype).tiny  # a zero student weight: finite loss and gradient
    per_row = torch.xlogy(teacher, teacher) - torch.xlogy(teacher, student.clamp_min(floor))
    return per_row.sum(dim=-1).mean()


def attention_mse(student, teacher):
    import torch.nn.functional as F

    return F.mse_loss(*matched_heads(student, teacher))


@dataclass(frozen=True)
class AttentionTerm:
    pairs: tuple[tuple[str, str], ...]
    distance: str  # kl | mse
    needs_teacher: bool = True

    def adapter(self, student_shape, teacher_shape):
        from torch import nn

        check_attention_shapes(student_shape, teacher_shape)
        return nn.Identity()

    def __call__(self, inputs: LossInputs):
        distance = attention_kl if self.distance == "kl" else attention_mse
        losses = [distance(student, teacher) for student, teacher in inputs.features]
        return sum(losses) / len(losses)


@LOSSES.register("attention-kl")
class AttentionKLFamily:
    name = "attention-kl"
    kind = "term"
    task_types = TASK_TYPES
    needs_teacher = True
    params_model = AttentionParams

    def build(self, params: AttentionParams) -> AttentionTerm:
        return AttentionTerm(as_tuples(params.pairs), "kl")


@LOSSES.register("attention-mse")
class AttentionMSEFamily:
    name = "attention-mse"
    kind = "term"
    task_types = TASK_TYPES
    needs_teacher = True
    params_model = AttentionParams

    def build(self, params: AttentionParams) -> AttentionTerm:
        return AttentionTerm(as_tuples(params.pairs), "mse")
