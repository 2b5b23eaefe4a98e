"""Teachers made ready to distill from: the built-in one is trained here on first use (on the
labelled training samples, cross-entropy, the recipe's teacher settings) and cached by its
form; every other form only loads."""

from __future__ import annotations

import logging

from edgedistill.distill.labels import labeled_part
from edgedistill.distill.losses import LOSSES
from edgedistill.distill.trainer import train
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.tasks.evaluate import score
from edgedistill.teachers import PreparedTeacher, Teacher
from edgedistill.teachers.builtin import BuiltinPrepared

log = logging.getLogger(__name__)


def load_teacher(
    prepared: PreparedTeacher, seed: int = 0, progress: ProgressFn = no_progress
) -> Teacher:
    """The prepared teacher, loaded; trained first (once, then cached) when it must be."""
    trained_now = False
    if prepared.needs_training(seed):
        assert isinstance(prepared, BuiltinPrepared)  # the only form that trains
        train_builtin(prepared, seed, progress)
        trained_now = True
    teacher = prepared.load(seed=seed, progress=progress)
    teacher.trained_now = trained_now
    return teacher


def train_builtin(prepared: BuiltinPrepared, seed: int, progress: ProgressFn) -> None:
    import torch

    recipe, data = prepared.recipe, prepared.data
    log.info("training the %s teacher (first use; cached afterwards)", recipe.name)
    torch.manual_seed(seed)
    model = prepared.architecture()
    assert recipe.teacher.train is not None  # the recipe schema requires it without a source
    result = train(
        model,
        labeled_part(data.train),
        data.val,
        recipe.teacher.train,
        LOSSES.get("ce")(recipe.distill),
        seed=seed,
        progress=progress,
        stage="teacher",
    )
    prepared.store(model, score(model, data.test), result.best_val_accuracy, seed)
