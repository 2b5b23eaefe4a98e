"""Distillation losses. Importing this package registers every shipped loss family."""

from edgedistill.distill.losses import (  # noqa: F401  (registration)
    at,
    attention_maps,
    born_again,
    ce,
    dkd,
    fitnet,
    hidden_states,
    kd,
    mse,
    multi_teacher,
    progressive,
    sentence_embedding,
)
from edgedistill.distill.losses._registry import (
    LOSSES,
    LayerMismatch,
    LossFamily,
    LossInputs,
    LossParams,
    LossTerm,
    check_losses,
    loss_names,
    loss_params,
)

__all__ = [
    "LOSSES",
    "LayerMismatch",
    "LossFamily",
    "LossInputs",
    "LossParams",
    "LossTerm",
    "check_losses",
    "loss_names",
    "loss_params",
]
