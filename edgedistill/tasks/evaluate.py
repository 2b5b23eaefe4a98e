"""A classifier's logits and accuracy on a split (or a tensor of inputs), in eval mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.tasks.data import all_labels, iter_batches

if TYPE_CHECKING:
    import torch
    from torch import nn


def predict_logits(model: nn.Module, dataset, batch_size: int = 256) -> torch.Tensor:
    """Logits for every sample of a dataset (or a tensor of inputs), in order, in eval mode."""
    import torch

    model.eval()
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.no_grad():
        if isinstance(dataset, torch.Tensor):
            chunks = [dataset[i : i + batch_size] for i in range(0, len(dataset), batch_size)]
            return torch.cat([model(chunk.to(device)).cpu() for chunk in chunks])
        return torch.cat([model(x.to(device)).cpu() for x, _ in iter_batches(dataset, batch_size)])


def accuracy(model: nn.Module, dataset) -> float:
    """Share of samples whose arg-max logit is the label."""
    logits = predict_logits(model, dataset)
    return float((logits.argmax(dim=1) == all_labels(dataset)).float().mean())
