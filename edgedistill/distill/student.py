"""Distill one student candidate from a teacher on a task (first version: soft-target KD, fp32)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill.progress import ProgressFn, no_progress
from edgedistill.students import Candidate, build_student

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.distill.trainer import TrainResult
    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe


@dataclass
class DistilledStudent:
    model: nn.Module
    candidate: Candidate
    train: TrainResult
    test_accuracy: float  # PyTorch, fp32


def distill_student(
    recipe: TaskRecipe,
    data: TaskData,
    teacher: nn.Module | None,
    candidate: Candidate,
    epochs: int | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
) -> DistilledStudent:
    """Train `candidate` with the recipe's loss; teacher logits are computed once up front."""
    import torch

    from edgedistill.distill.losses import LOSSES
    from edgedistill.distill.trainer import accuracy, predict_logits, train

    spec = recipe.distill
    train_spec = spec.train if epochs is None else spec.train.model_copy(update={"epochs": epochs})
    loss_fn = LOSSES.get(spec.loss)(spec)
    teacher_logits = None
    if loss_fn.uses_teacher:
        if teacher is None:
            raise ValueError(f"loss {spec.loss} needs a teacher")
        teacher_logits = predict_logits(teacher, data.train)
    torch.manual_seed(seed)
    model = build_student(candidate, data.input_shape, len(recipe.labels))
    result = train(
        model,
        data.train,
        data.val,
        train_spec,
        loss_fn,
        teacher_logits=teacher_logits,
        seed=seed,
        progress=progress,
        stage="distill",
    )
    return DistilledStudent(model, candidate, result, accuracy(model, data.test))
