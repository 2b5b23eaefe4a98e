"""Text distillation losses against values worked out by hand on tiny tensors, their layer
checks, and their place in the loss registry (image recipes see the same choices as before)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from edgedistill.distill.losses import LOSSES, LayerMismatch, LossInputs, check_losses
from edgedistill.distill.losses._tokens import mapped_pairs
from edgedistill.distill.objective import build_objective, build_terms
from edgedistill.errors import UserInputError
from edgedistill.tasks.recipe import LossSpec

TEXT_LOSSES = ("hidden-mse", "embedding-mse", "attention-kl", "attention-mse")
EMBEDDING_LOSSES = ("cosine-embedding", "mse-embedding")


def term(name: str, **params):
    family = LOSSES.get(name)
    return family.build(family.params_model.model_validate(params))


def tensor(values):
    return torch.tensor(values, dtype=torch.float32)


def with_features(*pairs):
    return LossInputs(torch.zeros(1, 2), torch.tensor([-1]), [], list(pairs))


def with_outputs(student, teacher):
    return LossInputs(tensor(student), torch.tensor([-1] * len(student)), [tensor(teacher)])


# --- hidden states and embedding layer ---------------------------------------------------------


def test_hidden_mse_by_hand_averages_the_pairs():
    # pair 1: differences 1, 0, 0, -2 -> (1 + 0 + 0 + 4) / 4 = 1.25; pair 2: all 3 -> 9
    first = (tensor([[[1, 2], [3, 4]]]), tensor([[[0, 2], [3, 6]]]))
    second = (tensor([[[3, 3], [3, 3]]]), torch.zeros(1, 2, 2))
    loss = term("hidden-mse", pairs=["layers.0=encoder.layer.1", "layers.1=encoder.layer.3"])
    assert loss(with_features(first, second)).item() == pytest.approx((1.25 + 9) / 2)


def test_hidden_mse_projects_a_narrower_student_to_the_teacher_width():
    loss = term("hidden-mse", pairs=["layers.0=encoder.layer.0"])
    projection = loss.adapter((2, 1), (2, 2))
    assert isinstance(projection, nn.Linear) and projection.weight.shape == (2, 1)
    with torch.no_grad():
        projection.weight.copy_(tensor([[2], [1]]))
    # student tokens 1 and 3 -> [2, 1] and [6, 3]; teacher [2, 2] and [6, 6]: (0 + 1 + 0 + 9) / 4
    student = projection(tensor([[[1], [3]]]))
    value = loss(with_features((student, tensor([[[2, 2], [6, 6]]]))))
    assert value.item() == pytest.approx(2.5)
    assert isinstance(loss.adapter((2, 4), (2, 4)), nn.Identity)


@pytest.mark.parametrize(
    ("student_shape", "teacher_shape", "named"),
    [((8, 4, 4), (8, 4, 4), "needs 3-d"), ((3, 4), (5, 4), "sequence length")],
)
def test_token_losses_refuse_other_shapes(student_shape, teacher_shape, named):
    with pytest.raises(LayerMismatch, match=named):
        term("hidden-mse").adapter(student_shape, teacher_shape)


def test_embedding_mse_compares_the_embedding_layers_by_default():
    loss = term("embedding-mse")
    assert loss.pairs == (("embeddings", "embeddings"),)
    # differences 0.5 and -1.5 -> (0.25 + 2.25) / 2
    value = loss(with_features((tensor([[[1.0, 1.0]]]), tensor([[[0.5, 2.5]]]))))
    assert value.item() == pytest.approx(1.25)


# --- attention maps -----------------------------------------------------------------------------


def test_attention_kl_by_hand():
    # rows: teacher [1/2, 1/2] vs student [1/4, 3/4]; teacher [1, 0] vs student [1/2, 1/2]
    row1 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row2 = 1.0 * math.log(1 / 0.5)  # the zero-weight key adds nothing
    student = tensor([[[[0.25, 0.75], [0.5, 0.5]]]])
    teacher = tensor([[[[0.5, 0.5], [1.0, 0.0]]]])
    loss = term("attention-kl", pairs=["a=b"])(with_features((student, teacher)))
    assert loss.item() == pytest.approx((row1 + row2) / 2, rel=1e-6)


def test_attention_kl_averages_heads_when_counts_differ():
    # student heads [[1, 0], [0, 1]] and [[0, 1], [1, 0]] average to 1/2 everywhere;
    # teacher (one head) rows [3/4, 1/4] and [1/4, 3/4]: each row 3/4 ln(3/2) + 1/4 ln(1/2)
    student = tensor([[[[1, 0], [0, 1]], [[0, 1], [1, 0]]]])
    teacher = tensor([[[[0.75, 0.25], [0.25, 0.75]]]])
    loss = term("attention-kl", pairs=["a=b"])(with_features((student, teacher)))
    assert loss.item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-6)


def test_attention_kl_gradient_is_finite_where_both_give_no_weight():
    student = tensor([[[[0.5, 0.5, 0.0]]]]).requires_grad_()
    teacher = tensor([[[[0.25, 0.75, 0.0]]]])
    loss = term("attention-kl", pairs=["a=b"])(with_features((student, teacher)))
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(student.grad).all()


def test_attention_mse_by_hand():
    # differences 0.25, -0.25, 0.5, -0.5 -> (1/16 + 1/16 + 1/4 + 1/4) / 4 = 5/32
    student = tensor([[[[0.25, 0.75], [0.5, 0.5]]]])
    teacher = tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    loss = term("attention-mse", pairs=["a=b"])(with_features((student, teacher)))
    assert loss.item() == pytest.approx(5 / 32)


def test_attention_losses_refuse_maps_over_other_lengths():
    with pytest.raises(LayerMismatch, match="same L"):
        term("attention-kl").adapter((2, 4, 4), (2, 8, 8))
    with pytest.raises(LayerMismatch, match="needs 4-d"):
        term("attention-mse").adapter((4, 32), (4, 32))


# --- sentence embeddings ------------------------------------------------------------------------


def test_cosine_embedding_by_hand():
    # [1, 0] vs [1, 1]: cos = 1/sqrt(2); [0, 2] vs [0, -3]: cos = -1 -> 1 - cos = 2
    loss = term("cosine-embedding")(with_outputs([[1, 0], [0, 2]], [[1, 1], [0, -3]]))
    assert loss.item() == pytest.approx((1 - 1 / math.sqrt(2) + 2) / 2, rel=1e-6)


def test_mse_embedding_by_hand():
    # differences -2, 0, 1, 1 -> (4 + 0 + 1 + 1) / 4
    loss = term("mse-embedding")(with_outputs([[1, 2], [3, 4]], [[3, 2], [2, 3]]))
    assert loss.item() == pytest.approx(1.5)


def test_embedding_losses_refuse_embeddings_of_other_sizes():
    with pytest.raises(ValueError, match="embed_dim=3"):
        term("cosine-embedding")(with_outputs([[1, 0]], [[1, 0, 0]]))


# --- registry and layer mapping -----------------------------------------------------------------


def test_text_losses_are_registered_for_their_task_types():
    for name in TEXT_LOSSES:
        assert set(LOSSES.get(name).task_types) == {"classification", "embedding"}
        assert LOSSES.get(name).needs_teacher
    for name in EMBEDDING_LOSSES:
        assert LOSSES.get(name).task_types == ("embedding",)


def test_embedding_losses_are_refused_for_a_classification_task():
    with pytest.raises(UserInputError, match="cannot train a classification task"):
        check_losses([LossSpec(name="cosine-embedding")], "--loss", "classification")
    check_losses([LossSpec(name="cosine-embedding")], "--loss", "embedding")


def test_regression_alternatives_are_unchanged():
    with pytest.raises(UserInputError, match="use at, ce, fitnet, mse$"):
        check_losses([LossSpec(name="kd")], "--loss", "regression")


def test_default_mapping_pairs_every_kth_teacher_layer():
    assert mapped_pairs(2, [0, 1, 2, 3]) == ["layers.0=encoder.layer.1", "layers.1=encoder.layer.3"]
    assert mapped_pairs(1, [0, 1], student_name="layers.{}.attention.probs") == [
        "layers.0.attention.probs=encoder.layer.1"
    ]


def test_mapping_naming_a_missing_layer_is_refused_with_the_layers_named():
    with pytest.raises(UserInputError, match=r"no layer 5.*layers are 0, 1, 2, 3"):
        mapped_pairs(2, [0, 1, 2, 3], [1, 5])


# --- with the trainer's objective: a wider text student as the teacher -------------------------


def text_student(hidden, heads, layers):
    from edgedistill.students.transformer import TransformerStudent

    return TransformerStudent(50, 8, layers, hidden, heads, 2 * hidden, 3, dropout=0.0)


def test_objective_projects_hidden_states_and_matches_attention_maps():
    torch.manual_seed(0)
    student, teacher = text_student(16, 2, 1), text_student(32, 4, 2).eval()
    ids = torch.randint(1, 50, (2, 8))
    hidden_pairs = mapped_pairs(1, [0, 1], teacher_name="layers.{}")
    attention_pairs = ["layers.0.attention.probs=layers.1.attention.probs"]
    specs = [
        LossSpec(name="hidden-mse", params={"pairs": hidden_pairs}),
        LossSpec(name="attention-kl", params={"pairs": attention_pairs}),
        LossSpec(name="embedding-mse"),
    ]
    objective = build_objective(build_terms(specs), student, teacher, ids[:1])
    adapters = objective.model.adapters
    assert isinstance(adapters["term0_pair0"], nn.Linear) and adapters[
        "term0_pair0"
    ].weight.shape == (32, 16)
    logits, features = objective.model(ids)
    with torch.no_grad():
        found = teacher.features(ids)
    teacher_features = {
        "layers.1": found["hidden_states"][2],
        "layers.1.attention.probs": found["attentions"][1],
        "embeddings": found["embeddings"],
    }
    loss = objective(logits, features, torch.tensor([-1, -1]), [teacher(ids)], teacher_features, 1)
    loss.backward()
    assert math.isfinite(loss.item()) and adapters["term0_pair0"].weight.grad is not None


def test_objective_refuses_an_unknown_student_layer_listing_the_layers():
    student, teacher = text_student(16, 2, 1), text_student(32, 4, 2)
    specs = [LossSpec(name="hidden-mse", params={"pairs": ["layers.3=layers.1"]})]
    with pytest.raises(UserInputError, match=r"no layer 'layers.3'.*layers.0 \[8, 16\]"):
        build_objective(build_terms(specs), student, teacher, torch.ones(1, 8, dtype=torch.long))
