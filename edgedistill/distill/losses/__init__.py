"""Distillation losses. Importing this package registers every shipped loss."""

from edgedistill.distill.losses import ce, kd  # noqa: F401  (registration)
from edgedistill.distill.losses._registry import LOSSES, DistillLoss

__all__ = ["LOSSES", "DistillLoss"]
