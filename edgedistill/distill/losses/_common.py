"""Small tensor helpers shared by loss families: losses on labels, softened KL, matching."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.distill.losses._registry import LayerMismatch
from edgedistill.tasks.kinds import TASK_KINDS, kind_of

if TYPE_CHECKING:
    import torch


def labeled_cross_entropy(logits, labels, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the samples that have a label (-1 = none); 0 when none has one."""
    return TASK_KINDS.get("classification").hard_loss(logits, labels, label_smoothing)


def target_loss(outputs, targets) -> torch.Tensor:
    """The loss on the targets alone, as the task's kind defines it: cross-entropy on class
    labels, mean squared error on regression outputs (labeled samples only)."""
    return kind_of(targets).hard_loss(outputs, targets)


def soft_target_kl(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch (Hinton et al. 2015)."""
    import torch.nn.functional as F

    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def spatial_ratio(student_shape, teacher_shape) -> tuple[int, int]:
    """How many times larger (student, teacher) feature maps are than the smaller one.

    Shapes exclude the batch dimension: (C, H, W). Raises LayerMismatch when neither map is an
    integer multiple of the other."""
    (_, sh, sw), (_, th, tw) = student_shape, teacher_shape
    if (sh, sw) == (th, tw):
        return 1, 1
    if sh >= th and sw >= tw and sh % th == 0 and sw % tw == 0 and sh // th == sw // tw:
        return sh // th, 1
    if th >= sh and tw >= sw and th % sh == 0 and tw % sw == 0 and th // sh == tw // sw:
        return 1, th // sh
    raise LayerMismatch(
        f"spatial sizes {sh}x{sw} and {th}x{tw} differ and neither is an integer multiple "
        "of the other"
    )


def pool_to(feature, factor: int):
    """Average-pool a N x C x H x W map by an integer factor (identity for 1)."""
    import torch.nn.functional as F

    return feature if factor == 1 else F.avg_pool2d(feature, factor)


def require_rank(shape, ranks: tuple[int, ...], role: str) -> None:
    if len(shape) not in ranks:
        wanted = " or ".join(f"{r + 1}-d" for r in ranks)
        raise LayerMismatch(f"the {role} output has shape {list(shape)}; this loss needs {wanted}")
