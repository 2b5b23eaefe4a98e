"""Progressive distillation through a teacher assistant (Mirzadeh, Farajtabar, Li, Levine,
Matsukawa & Ghasemzadeh 2020, "Improved Knowledge Distillation via Teacher Assistant",
arXiv:1902.03393).

teacher -> intermediate -> student: the intermediate comes from the student's own search space,
the candidate whose MACs are closest (in log scale) to the geometric mean of the teacher's and
the student's MACs, strictly between the two; `intermediate: SPEC` picks it by hand.
"""

from __future__ import annotations

import itertools
import math

from pydantic import Field

from edgedistill.distill.losses._registry import LOSSES, LossParams
from edgedistill.distill.stages import Stage, StageContext
from edgedistill.errors import UserInputError
from edgedistill.students import Candidate, canonical, enumerate_space
from edgedistill.students.cost_table import costs_for
from edgedistill.students.select import candidate_cost


class ProgressiveParams(LossParams):
    intermediate: str | None = Field(
        None, description="student spec of the intermediate (default: chosen between the sizes)"
    )


SIZE_KNOBS = ("w", "d", "r")  # width, depth, resolution: what scales a student up or down


def choose_intermediate(context: StageContext) -> Candidate:
    """The candidate of the student's family and block type (same knobs but width, depth and
    resolution) sized halfway, geometrically, between the student and the teacher."""

    def macs(candidate: Candidate) -> int:
        return candidate_cost(candidate.spec, context.input_shape, context.num_classes).macs

    student = canonical(context.student)
    fixed = {k: v for k, v in student.knobs.items() if k not in SIZE_KNOBS}
    student_macs, teacher_macs = macs(student), context.teacher_macs or 0
    middle = 0.5 * math.log(max(student_macs, 1) * max(teacher_macs, 1))
    space = list(enumerate_space(context.input_shape, [student.family]))
    if all(k in student.knobs for k in SIZE_KNOBS):  # the space's sizes, the student's blocks
        sizes = [sorted({c.knobs[k] for c in space if k in c.knobs}) for k in SIZE_KNOBS]
        space = [
            Candidate(student.family, {**fixed, **dict(zip(SIZE_KNOBS, values, strict=True))})
            for values in itertools.product(*sizes)
        ]
    # priced in one batch: the sizes between the space's may not be in the stored cost table
    priced = costs_for([c.spec for c in space], context.input_shape, context.num_classes)
    between = []
    for candidate in space:
        size = priced[candidate.spec].macs
        if student_macs < size < teacher_macs:
            between.append((abs(math.log(size) - middle), candidate))
    if not between:
        raise UserInputError(
            f"progressive: no {student.family} candidate lies between the student "
            f"({student_macs:,} MACs) and the teacher ({teacher_macs:,} MACs); "
            "give one with intermediate: SPEC"
        )
    return min(between, key=lambda item: item[0])[1]


@LOSSES.register("progressive")
class ProgressiveFamily:
    name = "progressive"
    kind = "procedure"
    task_types = ("classification",)
    needs_teacher = True
    params_model = ProgressiveParams

    def build(self, params: ProgressiveParams) -> ProgressiveParams:
        return params

    def uses_task_teacher(self, params: ProgressiveParams) -> bool:
        return True

    def stages(self, params: ProgressiveParams, context: StageContext) -> list[Stage]:
        if params.intermediate is not None:
            intermediate = Candidate.parse(params.intermediate, "progressive.intermediate")
        else:
            intermediate = choose_intermediate(context)
        return [
            Stage("intermediate", intermediate, "task", True),
            Stage("student", context.student, "previous", True),
        ]
