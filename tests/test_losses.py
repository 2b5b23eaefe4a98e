"""Each loss family against a value worked out by hand on tiny tensors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgedistill.distill.losses import LOSSES, LayerMismatch, LossInputs
from edgedistill.distill.losses._common import soft_target_kl


def term(name: str, **params):
    family = LOSSES.get(name)
    return family.build(family.params_model.model_validate(params))


def inputs(student, labels, teachers=(), features=(), epoch=1):
    return LossInputs(
        torch.tensor(student, dtype=torch.float32),
        torch.tensor(labels),
        [torch.tensor(t, dtype=torch.float32) for t in teachers],
        list(features),
        epoch,
    )


def test_shipped_loss_families_are_registered():
    assert set(LOSSES.names()) >= {
        "ce", "kd", "dkd", "fitnet", "at", "multi-teacher", "mse", "born-again", "progressive"
    }  # fmt: skip


def test_ce_skips_unlabeled_samples():
    loss = term("ce")(inputs([[0.0, 0.0], [5.0, 0.0]], [0, -1]))
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


def test_ce_of_a_batch_without_labels_is_zero_and_differentiable():
    logits = torch.zeros(3, 4, requires_grad=True)
    loss = term("ce")(LossInputs(logits, torch.tensor([-1, -1, -1]), []))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_kd_soft_term_by_hand():
    # teacher logits / T = [ln 3, 0] -> [3/4, 1/4]; student uniform; times T^2 = 4
    expected = 4 * (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))
    loss = term("kd", temperature=2.0, alpha=1.0)(
        inputs([[0.0, 0.0]], [1], [[[2 * math.log(3), 0.0]]])
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_kd_mixes_soft_and_hard_terms_with_alpha():
    soft = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    kd = term("kd", temperature=2.0, alpha=0.25)
    labelled = kd(inputs([[0.0, 0.0]], [1], [[[2 * math.log(3), 0.0]]]))
    assert labelled.item() == pytest.approx(0.25 * soft + 0.75 * math.log(2), rel=1e-5)
    unlabelled = kd(inputs([[0.0, 0.0]], [-1], [[[2 * math.log(3), 0.0]]]))
    assert unlabelled.item() == pytest.approx(0.25 * soft, rel=1e-5)


def test_kd_soft_term_vanishes_when_student_equals_teacher():
    logits = torch.randn(4, 10)
    assert soft_target_kl(logits, logits.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_dkd_target_and_non_target_terms_by_hand():
    # 3 classes, target 0, T = 1. Student uniform: binary [1/3, 2/3], others [1/2, 1/2].
    # Teacher exp([ln 4, ln 3, 0]) / 8 = [1/2, 3/8, 1/8]: binary [1/2, 1/2], others [3/4, 1/4].
    tckd = 0.5 * math.log(0.5 / (1 / 3)) + 0.5 * math.log(0.5 / (2 / 3))
    nckd = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    dkd = term("dkd", temperature=1.0, alpha=1.0, beta=8.0, ce_weight=0.0)
    loss = dkd(inputs([[0.0, 0.0, 0.0]], [0], [[[math.log(4), math.log(3), 0.0]]]))
    assert loss.item() == pytest.approx(tckd + 8 * nckd, rel=1e-5)


def test_dkd_reassembles_classical_kd():
    # Zhao et al. 2022, eq. 4: KD = TCKD + (1 - p_t) NCKD, per sample
    from edgedistill.distill.losses.dkd import dkd_parts

    torch.manual_seed(0)
    student, teacher, target = torch.randn(1, 6), torch.randn(1, 6) * 2, torch.tensor([2])
    tckd, nckd = dkd_parts(student, teacher, target, 3.0)
    p_target = (teacher / 3.0).softmax(dim=1)[0, 2]
    kd = soft_target_kl(student, teacher, 3.0)
    assert kd.item() == pytest.approx((tckd + (1 - p_target) * nckd).item(), rel=1e-4)


def test_dkd_uses_the_teacher_class_for_unlabeled_samples_and_warms_up():
    dkd = term("dkd", temperature=1.0, beta=1.0, ce_weight=0.0, warmup_epochs=4)
    labels_from_teacher = dkd(inputs([[0.3, 0.0]], [-1], [[[2.0, 0.0]]], epoch=4))
    explicit = dkd(inputs([[0.3, 0.0]], [0], [[[2.0, 0.0]]], epoch=4))
    assert labels_from_teacher.item() == pytest.approx(explicit.item())
    half = dkd(inputs([[0.3, 0.0]], [0], [[[2.0, 0.0]]], epoch=2))
    assert half.item() == pytest.approx(explicit.item() / 2)


def test_fitnet_is_the_mean_squared_error_of_the_pairs():
    fitnet = term("fitnet", pairs=["a=b", "c=d"])
    pairs = [
        (torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 4.0]])),  # MSE 2
        (torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]])),  # MSE 1
    ]
    assert fitnet(LossInputs(torch.zeros(1, 2), torch.tensor([0]), [], pairs)).item() == 1.5


def test_fitnet_projects_widths_and_pools_sizes():
    fitnet = term("fitnet", pairs=["a=b"])
    conv = fitnet.adapter((8, 16, 16), (32, 16, 16))
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.out_channels == 32
    pooled = fitnet.adapter((32, 16, 16), (32, 8, 8))
    assert pooled(torch.zeros(1, 32, 16, 16)).shape == (1, 32, 8, 8)
    linear = fitnet.adapter((24,), (64,))
    assert isinstance(linear, nn.Linear) and linear.out_features == 64
    assert isinstance(fitnet.adapter((32, 8, 8), (32, 8, 8)), nn.Identity)
    # a larger teacher map is pooled down to the student's inside the loss
    loss = fitnet(
        LossInputs(
            torch.zeros(1, 2),
            torch.tensor([0]),
            [],
            [(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 4, 4))],
        )
    )
    assert loss.item() == 0.0


@pytest.mark.parametrize(
    ("student", "teacher", "reason"),
    [((8, 16, 16), (8,), "different ranks"), ((8, 16, 16), (8, 6, 6), "integer multiple")],
)
def test_fitnet_refuses_shapes_it_cannot_match(student, teacher, reason):
    with pytest.raises(LayerMismatch, match=reason):
        term("fitnet", pairs=["a=b"]).adapter(student, teacher)


def test_attention_transfer_by_hand():
    # student attention [1, 0, 0, 0]; teacher [1, 1, 0, 0] / sqrt 2; beta / 2 = 1
    student = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    teacher = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    expected = ((1 - 2**-0.5) ** 2 + 0.5) / 4
    at = term("at", pairs=["a=b"], beta=2.0)
    loss = at(LossInputs(torch.zeros(1, 2), torch.tensor([0]), [], [(student, teacher)]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_attention_transfer_ignores_channel_counts_but_needs_maps():
    at = term("at", pairs=["a=b"])
    assert isinstance(at.adapter((8, 4, 4), (64, 4, 4)), nn.Identity)
    with pytest.raises(LayerMismatch):
        at.adapter((8,), (8,))


def test_multi_teacher_averages_soft_targets_with_weights():
    teachers = [[[math.log(3), 0.0]], [[0.0, math.log(3)]]]  # [3/4, 1/4] and [1/4, 3/4]
    equal = term("multi-teacher", temperature=1.0, alpha=1.0)
    assert equal(inputs([[0.0, 0.0]], [0], teachers)).item() == pytest.approx(0.0, abs=1e-6)
    weighted = term("multi-teacher", temperature=1.0, alpha=1.0, teacher_weights=[3, 1])
    mixture = (0.625, 0.375)
    expected = mixture[0] * math.log(mixture[0] / 0.5) + mixture[1] * math.log(mixture[1] / 0.5)
    assert weighted(inputs([[0.0, 0.0]], [0], teachers)).item() == pytest.approx(expected, rel=1e-5)


def test_multi_teacher_refuses_a_weight_count_that_differs_from_the_teachers():
    with pytest.raises(ValueError, match="2 entries for 3 teacher"):
        term("multi-teacher", teacher_weights=[1, 2]).check_teachers(3)


def test_mse_regresses_teacher_outputs():
    loss = term("mse")(inputs([[1.0, 2.0]], [0], [[[3.0, 2.0]]]))
    assert loss.item() == pytest.approx(2.0)


def test_kd_pulls_the_student_toward_the_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(32, 10) * 3
    student = torch.zeros(32, 10, requires_grad=True)
    kd = term("kd", temperature=2.0, alpha=1.0)
    optimizer = torch.optim.Adam([student], lr=0.3)
    first = None
    for _ in range(200):
        loss = kd(LossInputs(student, torch.zeros(32, dtype=torch.long), [teacher]))
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
    assert (student.argmax(1) == teacher.argmax(1)).float().mean().item() > 0.9


def test_kd_with_alpha_zero_is_cross_entropy():
    student, labels = torch.randn(6, 5), torch.randint(0, 5, (6,))
    loss = term("kd", alpha=0.0)(LossInputs(student, labels, [torch.randn(6, 5)]))
    assert torch.allclose(loss, F.cross_entropy(student, labels))
