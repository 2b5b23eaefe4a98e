"""A distillation run as a list of stages: who is trained, from which teacher, with which loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgedistill.students import Candidate

TeacherSource = Literal["task", "previous", "none"]


@dataclass(frozen=True)
class Stage:
    name: str  # "student", "generation-2", "intermediate", ...
    candidate: Candidate
    teacher: TeacherSource  # the run's teachers, the previous stage's model, or none
    with_terms: bool  # False: trained on the labels alone (cross-entropy)


@dataclass(frozen=True)
class StageContext:
    student: Candidate
    input_shape: tuple[int, int, int]
    num_classes: int
    teacher_macs: int | None  # the first teacher's MACs at batch 1, when the run has one


def single_stage(student: Candidate, needs_teacher: bool) -> list[Stage]:
    """The plain case: the student learns from the run's teachers (or the labels alone)."""
    return [Stage("student", student, "task" if needs_teacher else "none", True)]
