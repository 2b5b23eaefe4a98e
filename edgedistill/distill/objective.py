"""The training objective: weighted loss terms over the student (plus the learned adapters of
feature losses), checked against the student's and the teacher's layers before any training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill.distill.losses import LOSSES, LayerMismatch, LossInputs, loss_params
from edgedistill.errors import UserInputError
from edgedistill.teachers.taps import FeatureTaps, describe, layer_shapes, require_layer

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.distill.losses import LossTerm
    from edgedistill.tasks.recipe import LossSpec


@dataclass(frozen=True)
class WeightedTerm:
    name: str
    weight: float
    term: LossTerm


def _distill_model_class():
    from torch import nn

    class DistillModel(nn.Module):
        """The student and the adapters of its feature losses: what the optimizer (and DDP)
        trains. forward(x) -> (logits, {adapter key: adapted student feature})."""

        def __init__(self, student: nn.Module, adapters: dict[str, nn.Module], sources) -> None:
            super().__init__()
            self.student = student
            self.adapters = nn.ModuleDict(adapters)
            self._sources = dict(sources)  # adapter key -> student layer name
            self._taps = FeatureTaps(student, sorted(set(self._sources.values())))
            self._taps.active = False

        def forward(self, x):
            self._taps.active = True
            try:
                logits = self.student(x)
            finally:
                self._taps.active = False
            captured = self._taps.outputs
            features = {
                key: self.adapters[key](captured[layer]) for key, layer in self._sources.items()
            }
            captured.clear()
            return logits, features

        def release(self) -> None:
            """Remove the hooks from the student (before it is exported or reused)."""
            self._taps.remove()

    return DistillModel


def adapter_key(term_index: int, pair_index: int) -> str:
    return f"term{term_index}_pair{pair_index}"


class Objective:
    """sum_i weight_i * term_i over one batch; the per-term values are kept for the history."""

    def __init__(self, terms: list[WeightedTerm], model: nn.Module | None) -> None:
        """`model` is the DistillModel to train, or None for the bare student (no features)."""
        self.terms = terms
        self.model = model
        self.teacher_layers = sorted({t for wt in terms for _, t in wt.term.pairs})
        self.needs_teacher = any(wt.term.needs_teacher for wt in terms)

    def __call__(self, logits, features, labels, teacher_logits, teacher_features, epoch: int):

        total = 0.0
        for index, weighted in enumerate(self.terms):
            pairs = [
                (features[adapter_key(index, j)], teacher_features[teacher_layer])
                for j, (_, teacher_layer) in enumerate(weighted.term.pairs)
            ]
            inputs = LossInputs(logits, labels, teacher_logits, pairs, epoch)
            total = total + weighted.weight * weighted.term(inputs)
        return total


def build_terms(specs: list[LossSpec]) -> list[WeightedTerm]:
    """The run's terms (procedures left out), built from validated parameters."""

    terms = []
    for spec in specs:
        family = LOSSES.get(spec.name)
        if family.kind == "term":
            terms.append(WeightedTerm(spec.name, spec.weight, family.build(loss_params(spec))))
    if terms and sum(t.weight for t in terms) <= 0:
        raise UserInputError("losses: every weight is 0; give at least one term a weight above 0")
    return terms


def check_layers(
    terms: list[WeightedTerm],
    student: nn.Module,
    teacher: nn.Module | None,
    example: torch.Tensor,
    where: str = "",
) -> dict[str, nn.Module]:
    """Resolve every feature pair against the two models; return the adapters to train.

    Refuses (UserInputError) a layer name that does not exist, a term without pairs, or shapes
    that cannot be matched, listing the available layer names and output shapes."""
    from torch import nn

    feature_terms = [(i, wt) for i, wt in enumerate(terms) if uses_layers(wt)]
    if not feature_terms:
        return {}
    if teacher is None or not isinstance(teacher, nn.Module):
        names = ", ".join(wt.name for _, wt in feature_terms)
        raise UserInputError(f"loss {names}{where}: feature losses need a PyTorch teacher module")
    student_shapes = layer_shapes(student, example)
    teacher_shapes = layer_shapes(teacher, example)
    adapters: dict[str, nn.Module] = {}
    for index, weighted in feature_terms:
        context = f"loss {weighted.name}{where}"
        if not weighted.term.pairs:
            raise UserInputError(
                f"{context}: no layer pairs; give them with --layers STUDENT=TEACHER[,...] or in "
                f"the recipe (pairs: [STUDENT=TEACHER]). Student layers: "
                f"{describe(student_shapes)}. Teacher layers: {describe(teacher_shapes)}"
            )
        for j, (student_layer, teacher_layer) in enumerate(weighted.term.pairs):
            s_shape = require_layer(student_shapes, student_layer, "student", context)
            t_shape = require_layer(teacher_shapes, teacher_layer, "teacher", context)
            try:
                adapters[adapter_key(index, j)] = weighted.term.adapter(s_shape, t_shape)
            except LayerMismatch as exc:
                raise UserInputError(
                    f"{context}: cannot match student layer {student_layer} {list(s_shape)} with "
                    f"teacher layer {teacher_layer} {list(t_shape)}: {exc}"
                ) from None
    return adapters


def uses_layers(weighted: WeightedTerm) -> bool:

    return "pairs" in LOSSES.get(weighted.name).params_model.model_fields


def build_objective(
    terms: list[WeightedTerm],
    student: nn.Module,
    teacher: nn.Module | None,
    example: torch.Tensor,
    where: str = "",
) -> Objective:
    """Check the layers, build the adapters, wrap the student: the objective to train with."""
    adapters = check_layers(terms, student, teacher, example, where)
    sources = {
        adapter_key(i, j): student_layer
        for i, wt in enumerate(terms)
        for j, (student_layer, _) in enumerate(wt.term.pairs)
    }
    return Objective(terms, _distill_model_class()(student, adapters, sources))
