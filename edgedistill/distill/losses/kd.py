"""Knowledge distillation with soft targets (Hinton, Vinyals & Dean 2015, arXiv:1503.02531).

loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y).
The T^2 factor keeps the soft term's gradient magnitude independent of the temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.distill.losses._registry import LOSSES


def soft_target_kl(student_logits, teacher_logits, temperature: float):
    import torch.nn.functional as F

    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


@dataclass(frozen=True)
class KDLoss:
    temperature: float
    alpha: float
    uses_teacher: bool = True

    def __call__(self, student_logits, labels, teacher_logits):
        import torch.nn.functional as F

        soft = soft_target_kl(student_logits, teacher_logits, self.temperature)
        hard = F.cross_entropy(student_logits, labels)
        return self.alpha * soft + (1 - self.alpha) * hard


@LOSSES.register("kd")
def make_kd(spec) -> KDLoss:
    return KDLoss(temperature=spec.temperature, alpha=spec.alpha)
