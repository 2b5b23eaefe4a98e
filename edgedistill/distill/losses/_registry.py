"""The loss registry: each loss family module registers a factory under its name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from edgedistill.registry import Registry

if TYPE_CHECKING:
    import torch

    from edgedistill.tasks.recipe import DistillSpec


class DistillLoss(Protocol):
    """loss(student_logits, labels, teacher_logits) -> scalar tensor."""

    uses_teacher: bool

    def __call__(
        self,
        student_logits: torch.Tensor,
        labels: torch.Tensor,
        teacher_logits: torch.Tensor | None,
    ) -> torch.Tensor: ...


LOSSES: Registry[Callable[[DistillSpec], DistillLoss]] = Registry("loss")
