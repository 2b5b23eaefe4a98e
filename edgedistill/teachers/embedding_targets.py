"""A sentence-embedding task's targets: the teacher's embedding of every text.

Texts without labels teach nothing by themselves; what the student learns is the teacher's
pooled embedding (its pooling and normalisation, teachers/hf.py). Each split's targets become
those embeddings (float32, N x E, the split marked `embedding`), so that the test split scores a
student by its mean cosine to the teacher and its nearest-neighbour agreement
(tasks/kinds.py), and the task's outputs are named e0 .. e{E-1}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from edgedistill.progress import ProgressFn, no_progress
from edgedistill.tasks.data import Split, iter_batches
from edgedistill.tasks.evaluate import predict_logits

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.tasks.task import Task

SPLITS = ("train", "val", "test")


def with_teacher_embeddings(
    task: Task, teacher: nn.Module, progress: ProgressFn = no_progress
) -> Task:
    """The task with the teacher's embeddings as the targets of every split."""
    import torch

    splits = {}
    for index, name in enumerate(SPLITS):
        progress("teacher embeddings", index, len(SPLITS), name)
        split = getattr(task.data, name)
        inputs = torch.cat([x for x, _ in iter_batches(split)])
        splits[name] = Split(inputs, predict_logits(teacher, inputs).float(), "embedding")
    progress("teacher embeddings", len(SPLITS), len(SPLITS), "")
    width = int(splits["train"].y.shape[1])
    recipe = task.recipe.model_copy(update={"labels": [f"e{i}" for i in range(width)]})
    note = (
        f"the targets are the teacher's {width}-wide sentence embeddings of the "
        f"{sum(len(s) for s in splits.values())} texts; the student learns those"
    )
    return replace(
        task,
        recipe=recipe,
        data=replace(task.data, **splits),
        notes=[*task.notes, note],
    )
