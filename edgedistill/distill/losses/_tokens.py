"""Helpers shared by the text losses: token-state projections, head averaging, layer pairs.

Token states are N x L x H (shape L x H without the batch), attention maps N x heads x L x L.
"""

from __future__ import annotations

from edgedistill.distill.losses._common import require_rank
from edgedistill.distill.losses._registry import LayerMismatch
from edgedistill.students.transformer import check_mapping

STUDENT_LAYER = "layers.{}"  # a TransformerStudent's encoder layers
STUDENT_ATTENTION = "layers.{}.attention.probs"  # ...and their softmax probabilities
TEACHER_LAYER = "encoder.layer.{}"  # a transformers BertModel's


def token_projection(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]):
    """A learned linear map from the student's hidden size to the teacher's (Identity when they
    are equal); refuses shapes that are not L x H or whose sequence lengths differ."""
    from torch import nn

    require_rank(student_shape, (2,), "student layer")
    require_rank(teacher_shape, (2,), "teacher layer")
    if student_shape[0] != teacher_shape[0]:
        raise LayerMismatch(
            f"student tokens {list(student_shape)} and teacher tokens {list(teacher_shape)} "
            "differ in sequence length"
        )
    if student_shape[1] == teacher_shape[1]:
        return nn.Identity()
    return nn.Linear(student_shape[1], teacher_shape[1], bias=False)


def check_attention_shapes(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]):
    """Attention maps heads x L x L on both sides with the same L (head counts may differ)."""
    require_rank(student_shape, (3,), "student layer")
    require_rank(teacher_shape, (3,), "teacher layer")
    if student_shape[1:] != teacher_shape[1:] or student_shape[1] != student_shape[2]:
        raise LayerMismatch(
            f"attention maps {list(student_shape)} and {list(teacher_shape)} are not both "
            "heads x L x L over the same L"
        )


def matched_heads(student, teacher):
    """(student, teacher) maps N x heads x L x L; both averaged over heads when counts differ."""
    if student.shape[1] == teacher.shape[1]:
        return student, teacher
    return student.mean(dim=1, keepdim=True), teacher.mean(dim=1, keepdim=True)


def mapped_pairs(
    student_layers: int,
    teacher_layers: list[int],
    mapping: list[int] | None = None,
    student_name: str = STUDENT_LAYER,
    teacher_name: str = TEACHER_LAYER,
) -> list[str]:
    """`STUDENT=TEACHER` layer pairs (as the `pairs` of hidden_mse, attention_kl, ...) for a
    mapping of each student layer to a teacher layer (0-based; default spread evenly, as
    students.transformer.spread_layers); refuses a mapping that names a missing teacher layer,
    listing the teacher's layers."""
    chosen = check_mapping(mapping, student_layers, teacher_layers)
    return [
        f"{student_name.format(mine)}={teacher_name.format(theirs)}"
        for mine, theirs in enumerate(chosen)
    ]
