"""Layer pairs for feature losses: `{student: NAME, teacher: NAME}` or the short `NAME=NAME`."""

from __future__ import annotations

from pydantic import Field, model_validator

from edgedistill.distill.losses._common import pool_to
from edgedistill.distill.losses._registry import LossParams


class LayerPair(LossParams):
    student: str = Field(min_length=1, description="module name in the student")
    teacher: str = Field(min_length=1, description="module name in the teacher")

    @model_validator(mode="before")
    @classmethod
    def _from_short_form(cls, value):
        if isinstance(value, str):
            student, sep, teacher = value.partition("=")
            if not sep:
                raise ValueError(f"layer pair {value!r}: expected STUDENT_LAYER=TEACHER_LAYER")
            return {"student": student.strip(), "teacher": teacher.strip()}
        return value


def as_tuples(pairs: list[LayerPair]) -> tuple[tuple[str, str], ...]:
    return tuple((pair.student, pair.teacher) for pair in pairs)


def match_teacher(student_feature, teacher_feature):
    """Average-pool a teacher map that is larger than the (adapted) student map down to it."""

    if teacher_feature.dim() == 4 and teacher_feature.shape[-1] > student_feature.shape[-1]:
        return pool_to(teacher_feature, teacher_feature.shape[-1] // student_feature.shape[-1])
    return teacher_feature
