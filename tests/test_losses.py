import pytest
import torch
import torch.nn.functional as F

from edgedistill.distill.losses import LOSSES
from edgedistill.distill.losses.kd import KDLoss, soft_target_kl


def test_kd_with_alpha_zero_is_cross_entropy():
    student, labels = torch.randn(6, 5), torch.randint(0, 5, (6,))
    loss = KDLoss(temperature=4.0, alpha=0.0)(student, labels, torch.randn(6, 5))
    assert torch.allclose(loss, F.cross_entropy(student, labels))


def test_soft_term_vanishes_when_student_equals_teacher():
    logits = torch.randn(4, 10)
    assert soft_target_kl(logits, logits.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_term_is_scaled_by_temperature_squared():
    student, teacher = torch.randn(4, 10), torch.randn(4, 10)
    temperature = 5.0
    p_teacher = F.softmax(teacher / temperature, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / temperature, dim=1))).sum(1).mean()
    expected = kl * temperature**2
    assert soft_target_kl(student, teacher, temperature).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_kd_pulls_the_student_toward_the_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(32, 10) * 3
    student = torch.zeros(32, 10, requires_grad=True)
    loss_fn = LOSSES.get("kd")(type("Spec", (), {"temperature": 2.0, "alpha": 1.0})())
    optimizer = torch.optim.Adam([student], lr=0.3)
    first = None
    for _ in range(200):
        loss = loss_fn(student, torch.zeros(32, dtype=torch.long), teacher)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
    agreement = (student.argmax(1) == teacher.argmax(1)).float().mean().item()
    assert agreement > 0.9
