"""Decoupled knowledge distillation (Zhao, Cui, Song, Qiu & Liang 2022, arXiv:2203.08679).

Classical KD splits into a target-class term (TCKD: the binary "target vs the rest" distributions
of teacher and student) and a non-target-class term (NCKD: the distributions over the other
classes); DKD weights them separately:

    loss = ce_weight * CE(s, y) + min(epoch / warmup_epochs, 1) * T^2 * (alpha * TCKD + beta * NCKD)

Samples without a label use the teacher's top class as their target class.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._common import labeled_cross_entropy
from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams

_MASK = 1000.0  # subtracted from the target logit to leave it out of the NCKD softmax


class DKDParams(LossParams):
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(1.0, ge=0, description="weight of the target-class term (TCKD)")
    beta: float = Field(8.0, ge=0, description="weight of the non-target-class term (NCKD)")
    ce_weight: float = Field(1.0, ge=0, description="weight of cross-entropy on the labels")
    warmup_epochs: int = Field(0, ge=0, description="epochs over which the DKD term ramps up")


def binary_log_probs(logits, target_mask):
    """log p(target) and log p(not target) from logits, computed stably in log space."""
    import torch

    log_all = torch.logsumexp(logits, dim=1)
    log_target = (logits * target_mask).sum(dim=1) - log_all
    log_rest = torch.logsumexp(logits - _MASK * target_mask, dim=1) - log_all
    return torch.stack([log_target, log_rest], dim=1)


def dkd_parts(student_logits, teacher_logits, targets, temperature: float):
    """(TCKD, NCKD), each already scaled by T^2 and averaged over the batch."""
    import torch.nn.functional as F

    mask = F.one_hot(targets, student_logits.shape[1]).to(student_logits.dtype)
    student, teacher = student_logits / temperature, teacher_logits / temperature
    tckd = F.kl_div(
        binary_log_probs(student, mask),
        binary_log_probs(teacher, mask),
        reduction="batchmean",
        log_target=True,
    )
    nckd = F.kl_div(
        F.log_softmax(student - _MASK * mask, dim=1),
        F.log_softmax(teacher - _MASK * mask, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return tckd * temperature**2, nckd * temperature**2


@dataclass(frozen=True)
class DKDTerm:
    params: DKDParams
    needs_teacher: bool = True
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError("dkd compares no layers")

    def __call__(self, inputs: LossInputs):
        import torch

        p = self.params
        teacher = inputs.teacher_logits[0]
        targets = torch.where(inputs.labels >= 0, inputs.labels, teacher.argmax(dim=1))
        tckd, nckd = dkd_parts(inputs.student_logits, teacher, targets, p.temperature)
        ramp = min(inputs.epoch / p.warmup_epochs, 1.0) if p.warmup_epochs else 1.0
        loss = ramp * (p.alpha * tckd + p.beta * nckd)
        if p.ce_weight:
            loss = loss + p.ce_weight * labeled_cross_entropy(inputs.student_logits, inputs.labels)
        return loss


@LOSSES.register("dkd")
class DKDFamily:
    name = "dkd"
    kind = "term"
    task_types = ("classification",)
    needs_teacher = True
    params_model = DKDParams

    def build(self, params: DKDParams) -> DKDTerm:
        return DKDTerm(params)
