"""The registry of student families; each family module registers itself here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from edgedistill.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.students.candidate import Candidate


class StudentFamily(Protocol):
    """A family knows its knobs, enumerates its search space, and builds a module per candidate."""

    name: str

    def space(self, input_shape: tuple[int, int, int]) -> Iterable[Candidate]: ...

    def build(
        self, candidate: Candidate, input_shape: tuple[int, int, int], num_classes: int
    ) -> nn.Module: ...

    def validate(self, candidate: Candidate) -> None: ...

    def canonical(self, candidate: Candidate) -> Candidate: ...


FAMILIES: Registry[StudentFamily] = Registry("student family", instances=True)
