"""Plain cross-entropy on the labels: the no-teacher baseline, and how teachers are trained."""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.distill.losses._registry import LOSSES


@dataclass(frozen=True)
class CrossEntropyLoss:
    uses_teacher: bool = False

    def __call__(self, student_logits, labels, teacher_logits=None):
        import torch.nn.functional as F

        return F.cross_entropy(student_logits, labels)


@LOSSES.register("ce")
def make_ce(spec) -> CrossEntropyLoss:
    return CrossEntropyLoss()
