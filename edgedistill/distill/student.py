"""Distill one student candidate from a teacher with the recipe's losses (what `fit` runs).

The terms come from the recipe's `distill.losses`; teacher outputs are cached when the input
pipeline is deterministic. Multi-stage procedures (born-again, progressive) and several
teachers are `edgedistill distill` features; `fit` trains the single student stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.students import Candidate, build_student

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.distill.trainer import TrainResult
    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe

log = logging.getLogger(__name__)


@dataclass
class DistilledStudent:
    model: nn.Module
    candidate: Candidate
    train: TrainResult
    test_accuracy: float  # PyTorch, fp32
    teacher_outputs: str = "none"  # cached | online | none


def distill_student(
    recipe: TaskRecipe,
    data: TaskData,
    teacher: nn.Module | None,
    candidate: Candidate,
    epochs: int | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
) -> DistilledStudent:
    """Train `candidate` with the recipe's loss terms from `teacher` (frozen)."""
    import torch

    from edgedistill.distill import cache
    from edgedistill.distill.objective import build_objective, build_terms
    from edgedistill.distill.teacher_outputs import TeacherRunner
    from edgedistill.distill.train_stage import data_identity
    from edgedistill.distill.trainer import accuracy, train

    spec = recipe.distill
    train_spec = spec.train if epochs is None else spec.train.model_copy(update={"epochs": epochs})
    terms = build_terms(spec.losses)
    if len(terms) != len(spec.losses):
        log.info("fit trains one student stage; procedures in distill.losses are left out")
    torch.manual_seed(seed)
    model = build_student(candidate, data.input_shape, len(recipe.labels))
    example = torch.stack([data.train[i][0] for i in range(min(2, len(data.train)))])
    objective = build_objective(terms, model, teacher, example)
    runner = outputs = None
    if objective.needs_teacher:
        if teacher is None:
            names = ", ".join(t.name for t in terms if t.term.needs_teacher)
            raise UserInputError(f"task {recipe.name}: loss {names} needs a teacher")
        runner = TeacherRunner([teacher], objective.teacher_layers, torch.device("cpu"))
        outputs = cache.choose_outputs(
            runner,
            data.train,
            data_identity(recipe, data, data.train),
            random_augment=train_spec.augment.is_random,
        )
    try:
        result = train(
            model,
            data.train,
            data.val,
            train_spec,
            objective,
            outputs,
            seed=seed,
            progress=progress,
            stage="distill",
        )
    finally:
        if objective.model is not None:
            objective.model.release()
        if runner is not None:
            runner.close()
    mode = outputs.mode if outputs is not None else "none"
    return DistilledStudent(model, candidate, result, accuracy(model, data.test), mode)
