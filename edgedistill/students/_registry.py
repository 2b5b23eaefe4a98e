"""The registry of student families; each family module registers itself here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from edgedistill.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.inputs import Vocabulary
    from edgedistill.latency.costs import ModelCost
    from edgedistill.students.candidate import Candidate


class StudentFamily(Protocol):
    """A family knows its knobs, enumerates its search space, builds a module per candidate and
    prices it.

    `input_shape` is one sample's: (C, H, W) for images, (L,) for token ids (edgedistill.inputs);
    a family yields no candidates for inputs it does not take. Task facts a module needs beyond
    the shape (a text task's vocabulary) are knobs of the candidate, so that its spec alone
    rebuilds it."""

    name: str
    task_knobs: tuple[str, ...]  # knobs the task sets (v, p: a text task's vocabulary)

    def space(
        self, input_shape: tuple[int, ...], vocabulary: Vocabulary | None = None
    ) -> Iterable[Candidate]: ...

    def build(
        self, candidate: Candidate, input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module: ...

    def cost(
        self, candidate: Candidate, input_shape: tuple[int, ...], num_classes: int, precision: str
    ) -> ModelCost: ...

    def validate(self, candidate: Candidate) -> None: ...

    def canonical(self, candidate: Candidate) -> Candidate: ...


FAMILIES: Registry[StudentFamily] = Registry("student family", instances=True)
