"""The training loop: mini-batches from in-memory splits, AdamW + cosine schedule, early stopping.

Used both to train teachers (cross-entropy) and to distill students (any registered loss with
teacher logits computed once up front: the input pipeline is deterministic, so they are exact).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgedistill.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.distill.losses import DistillLoss
    from edgedistill.tasks.data import Split
    from edgedistill.tasks.recipe import TrainSpec

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def predict_logits(model: nn.Module, dataset, batch_size: int = 256) -> torch.Tensor:
    """Logits for every sample of a dataset (or a tensor of inputs), in order, in eval mode."""
    import torch

    from edgedistill.tasks.data import iter_batches

    model.eval()
    with torch.no_grad():
        if isinstance(dataset, torch.Tensor):
            chunks = [dataset[i : i + batch_size] for i in range(0, len(dataset), batch_size)]
            return torch.cat([model(chunk) for chunk in chunks])
        return torch.cat([model(x) for x, _ in iter_batches(dataset, batch_size)])


def accuracy(model: nn.Module, dataset) -> float:
    from edgedistill.tasks.data import all_labels

    logits = predict_logits(model, dataset)
    return float((logits.argmax(dim=1) == all_labels(dataset)).float().mean())


def train(
    model: nn.Module,
    train_split: Split,
    val_split: Split,
    spec: TrainSpec,
    loss_fn: DistillLoss,
    teacher_logits: torch.Tensor | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    stage: str = "train",
) -> TrainResult:
    """Train in place; on return the model holds the weights of the best validation epoch."""
    import torch

    if loss_fn.uses_teacher and teacher_logits is None:
        raise ValueError("this loss needs teacher logits")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.epochs)
    best_accuracy, best_epoch, best_state = -1.0, -1, None
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    n = len(train_split.x)
    epoch = 0
    for epoch in range(1, spec.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator)
        total_loss = 0.0
        for start in range(0, n, spec.batch_size):
            index = order[start : start + spec.batch_size]
            logits = model(train_split.x[index])
            targets = teacher_logits[index] if teacher_logits is not None else None
            loss = loss_fn(logits, train_split.y[index], targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
        scheduler.step()
        val_accuracy = accuracy(model, val_split)
        history.append({"epoch": epoch, "loss": total_loss / n, "val_accuracy": val_accuracy})
        if val_accuracy > best_accuracy:
            best_accuracy, best_epoch = val_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
        progress(stage, epoch, spec.epochs, f"val acc {val_accuracy:.3f}")
        log.debug("%s epoch %d loss %.4f val %.4f", stage, epoch, total_loss / n, val_accuracy)
        if epoch - best_epoch >= spec.patience:
            log.info("%s: early stop at epoch %d (best %d)", stage, epoch, best_epoch)
            progress(stage, spec.epochs, spec.epochs, f"early stop, best epoch {best_epoch}")
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_accuracy, best_epoch, epoch, time.perf_counter() - started, history)
