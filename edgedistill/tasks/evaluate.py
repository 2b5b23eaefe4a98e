"""A model's outputs on a split (or a tensor of inputs) and its score there, in eval mode.

The score is the task's one figure, higher is better: accuracy for classifiers, R² for
regression (edgedistill.tasks.kinds); `metrics` gives every figure of the task's kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.tasks.data import all_labels, iter_batches, task_kind

if TYPE_CHECKING:
    import torch
    from torch import nn


def predict_logits(model: nn.Module, dataset, batch_size: int = 256) -> torch.Tensor:
    """Outputs for every sample of a dataset (or a tensor of inputs), in order, in eval mode."""
    import torch

    model.eval()
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.no_grad():
        if isinstance(dataset, torch.Tensor):
            chunks = [dataset[i : i + batch_size] for i in range(0, len(dataset), batch_size)]
            return torch.cat([model(chunk.to(device)).cpu() for chunk in chunks])
        return torch.cat([model(x.to(device)).cpu() for x, _ in iter_batches(dataset, batch_size)])


def score(model: nn.Module, dataset) -> float:
    """The task's score on the dataset: accuracy, R² for regression targets, or the mean cosine
    to the teacher's embeddings."""
    targets = all_labels(dataset)
    return task_kind(dataset, targets).score(predict_logits(model, dataset), targets)


def metrics(model: nn.Module, dataset) -> dict[str, float]:
    """Every figure of the task's kind: accuracy; mae, rmse and r2; or cosine and
    neighbour_agreement."""
    targets = all_labels(dataset)
    return task_kind(dataset, targets).metrics(predict_logits(model, dataset), targets)


def accuracy(model: nn.Module, dataset) -> float:
    """Share of samples whose arg-max logit is the label (classifiers)."""
    logits = predict_logits(model, dataset)
    return float((logits.argmax(dim=1) == all_labels(dataset)).float().mean())
