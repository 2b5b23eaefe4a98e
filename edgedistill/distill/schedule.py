"""Optimizers and per-epoch learning-rate schedules named in the recipe (train.optimizer,
train.schedule, train.warmup_epochs); the rate is a pure function of the epoch, so a resumed
run needs nothing but the epoch number to continue the schedule."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from edgedistill.tasks.recipe import TrainSpec


def _adamw(parameters, spec: TrainSpec) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(parameters, lr=spec.lr, weight_decay=spec.weight_decay)


def _sgd(parameters, spec: TrainSpec) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(
        parameters,
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        nesterov=spec.momentum > 0,
    )


OPTIMIZERS: dict[str, Callable] = {"adamw": _adamw, "sgd": _sgd}

# progress in [0, 1) through the post-warm-up epochs -> learning-rate factor
SCHEDULES: dict[str, Callable[[float], float]] = {
    "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
    "step": lambda progress: 0.1 ** ((progress >= 0.5) + (progress >= 0.75)),
    "constant": lambda progress: 1.0,
}


def make_optimizer(parameters, spec: TrainSpec) -> torch.optim.Optimizer:
    return OPTIMIZERS[spec.optimizer](parameters, spec)


def learning_rate(spec: TrainSpec, epoch: int) -> float:
    """The rate for 1-based `epoch`: linear warm-up, then the schedule over the other epochs."""
    if epoch <= spec.warmup_epochs:
        return spec.lr * epoch / spec.warmup_epochs
    remaining = max(spec.epochs - spec.warmup_epochs, 1)
    return spec.lr * SCHEDULES[spec.schedule]((epoch - 1 - spec.warmup_epochs) / remaining)


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
