"""The loss registry: each loss family module registers itself here under its recipe name.

A family is either a *term* of the training objective (ce, kd, dkd, fitnet, at, multi-teacher,
mse), built from its validated parameters, or a *procedure* (born-again, progressive) that
splits a run into stages, each trained with the run's terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from edgedistill.errors import UserInputError, describe_validation
from edgedistill.registry import Registry
from edgedistill.tasks.recipe import LossSpec

if TYPE_CHECKING:
    import torch
    from torch import nn


class LossParams(BaseModel):
    """Base of every family's parameter model: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerMismatch(ValueError):
    """Two layers' outputs cannot be compared by a feature loss; the message says why."""


@dataclass
class LossInputs:
    """What a term sees for one mini-batch."""

    student_logits: torch.Tensor
    # int64 classes, -1 where the sample has no label; regression: float rows, NaN unlabeled
    labels: torch.Tensor
    teacher_logits: list[torch.Tensor]  # one per teacher (empty when the run has none)
    features: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    epoch: int = 1  # 1-based, for terms with a warm-up


class LossTerm(Protocol):
    """One weighted term of the objective."""

    needs_teacher: bool
    pairs: tuple[tuple[str, str], ...]  # (student layer, teacher layer) it compares

    def adapter(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]) -> nn.Module:
        """The module applied to the student feature (a learned projection, pooling or Identity).

        Raises LayerMismatch when the two shapes cannot be matched."""
        ...

    def __call__(self, inputs: LossInputs) -> torch.Tensor: ...


class LossFamily(Protocol):
    name: str
    kind: Literal["term", "procedure"]
    needs_teacher: bool
    task_types: tuple[str, ...]  # classification, regression: the outputs it can train
    params_model: ClassVar[type[LossParams]]

    def build(self, params: Any) -> Any:
        """A LossTerm for a term family; a procedure family returns its validated params.

        Procedure families also have `stages(params, StageContext) -> list[Stage]` and
        `uses_task_teacher(params) -> bool` (see born_again.py, progressive.py)."""
        ...


LOSSES: Registry[LossFamily] = Registry("loss", instances=True)


def loss_names(
    kind: str, *, needs_teacher: bool | None = None, compares_layers: bool | None = None
) -> list[str]:
    """Registered losses of one kind ("term" or "procedure"), optionally only those that do
    (or do not) need a teacher, or compare layers (their params have `pairs`)."""
    names = []
    for name in LOSSES:
        family = LOSSES.get(name)
        if family.kind != kind:
            continue
        if needs_teacher is not None and family.needs_teacher != needs_teacher:
            continue
        layered = "pairs" in family.params_model.model_fields
        if compares_layers is not None and layered != compares_layers:
            continue
        names.append(name)
    return names


def parse_params(family: LossFamily, params: dict[str, Any]) -> LossParams:
    return family.params_model.model_validate(params)


def loss_params(spec: LossSpec) -> LossParams:
    """A recipe entry's parameters, validated by its family's own model (ValueError if bad)."""
    family = LOSSES.get(spec.name)
    try:
        return family.params_model.model_validate(spec.params)
    except ValidationError as exc:
        raise ValueError(
            describe_validation(exc, f"{spec.name} parameter ", empty="(all)")
        ) from None


def check_losses(specs: list[LossSpec], where: str, task_type: str = "classification") -> None:
    """Every entry names a registered loss with valid parameters, that can train the task's
    outputs, and at most one procedure; refused naming `where` (the recipe file or flag) and
    the field."""
    for index, spec in enumerate(specs):
        # a flag names itself; a recipe names the file and the field
        located = where if where.startswith("--") else f"{where}: field distill.losses.{index}"
        if spec.name not in LOSSES:
            raise UserInputError(f"{located}: name: {LOSSES.unknown_message(spec.name)}")
        try:
            loss_params(spec)
        except ValueError as exc:
            raise UserInputError(f"{located}: {exc}") from None
        if task_type not in LOSSES.get(spec.name).task_types:
            fitting = [name for name in LOSSES if task_type in LOSSES.get(name).task_types]
            raise UserInputError(
                f"{located}: {spec.name} needs class logits and cannot train a "
                f"{task_type} task; use {', '.join(fitting)}"
            )
    procedures = [s.name for s in specs if LOSSES.get(s.name).kind == "procedure"]
    if len(procedures) > 1:
        raise UserInputError(
            f"{where}: field distill.losses: at most one procedure, got {', '.join(procedures)}"
        )
