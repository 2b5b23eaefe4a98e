"""Student search spaces and builders. Importing this package registers every shipped family."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.students import mobilenet, transformer  # noqa: F401  (register mbv2, tfm)
from edgedistill.students._registry import FAMILIES, StudentFamily
from edgedistill.students.candidate import Candidate
from edgedistill.students.transformer import text_task_knobs

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.inputs import Vocabulary


def build_student(
    candidate: Candidate, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """Build the nn.Module a candidate describes."""
    return FAMILIES.get(candidate.family).build(candidate, input_shape, num_classes)


def canonical(candidate: Candidate) -> Candidate:
    """The candidate with all its family's knobs spelled out; refuses unknown or bad knobs."""
    return FAMILIES.get(candidate.family).canonical(candidate)


def parse_student(spec: str, flag: str = "--student") -> Candidate:
    """A spec string as printed by `edgedistill search`, validated and made canonical."""
    return canonical(Candidate.parse(spec, flag))


def with_task_knobs(candidate: Candidate, vocabulary: Vocabulary | None) -> Candidate:
    """The candidate with the knobs its family takes from the task filled in where the spec
    leaves them out (a text student's vocabulary size v, padding id p and output e)."""
    wanted = FAMILIES.get(candidate.family).task_knobs
    if vocabulary is None or not wanted:
        return candidate
    values = text_task_knobs(vocabulary)
    filled = {
        knob: values[knob] for knob in wanted if knob not in candidate.knobs and knob in values
    }
    return Candidate(candidate.family, {**candidate.knobs, **filled})


def enumerate_space(
    input_shape: tuple[int, ...],
    families: list[str] | None = None,
    vocabulary: Vocabulary | None = None,
) -> list[Candidate]:
    """Every family's candidates for samples of `input_shape` (token ids: over `vocabulary`)."""
    names = families or FAMILIES.names()
    return [c for name in names for c in FAMILIES.get(name).space(input_shape, vocabulary)]


__all__ = [
    "FAMILIES",
    "Candidate",
    "StudentFamily",
    "build_student",
    "canonical",
    "enumerate_space",
    "parse_student",
    "with_task_knobs",
]
