"""Progressive distillation through a teacher assistant (Mirzadeh, Farajtabar, Li, Levine,
Matsukawa & Ghasemzadeh 2020, "Improved Knowledge Distillation via Teacher Assistant",
arXiv:1902.03393).

teacher -> intermediate -> student: the intermediate comes from the student's own search space,
the candidate whose MACs are closest (in log scale) to the geometric mean of the teacher's and
the student's MACs, strictly between the two; `intermediate: SPEC` picks it by hand.
"""

from __future__ import annotations

import math

from pydantic import Field

from edgedistill.distill.losses._registry import LOSSES, LossParams
from edgedistill.distill.stages import Stage, StageContext
from edgedistill.errors import UserInputError
from edgedistill.students import Candidate


class ProgressiveParams(LossParams):
    intermediate: str | None = Field(
        None, description="student spec of the intermediate (default: chosen between the sizes)"
    )


def choose_intermediate(context: StageContext) -> Candidate:
    """The candidate of the student's family sized halfway (geometrically) to the teacher."""
    from edgedistill.latency.costs import model_cost
    from edgedistill.students import build_student, enumerate_space

    student_macs = _macs(context.student, context)
    teacher_macs = context.teacher_macs or 0
    between = []
    for candidate in enumerate_space(context.input_shape, [context.student.family]):
        model = build_student(candidate, context.input_shape, context.num_classes)
        macs = model_cost(model, context.input_shape).macs
        if student_macs < macs < teacher_macs:
            between.append(
                (abs(math.log(macs) - 0.5 * math.log(student_macs * teacher_macs)), candidate)
            )
    if not between:
        raise UserInputError(
            f"progressive: no {context.student.family} candidate lies between the student "
            f"({student_macs:,} MACs) and the teacher ({teacher_macs:,} MACs); "
            "give one with intermediate: SPEC"
        )
    return min(between, key=lambda item: item[0])[1]


def _macs(candidate: Candidate, context: StageContext) -> int:
    from edgedistill.latency.costs import model_cost
    from edgedistill.students import build_student

    model = build_student(candidate, context.input_shape, context.num_classes)
    return model_cost(model, context.input_shape).macs


class ProgressiveFamily:
    name = "progressive"
    kind = "procedure"
    needs_teacher = True
    params_model = ProgressiveParams

    def build(self, params: ProgressiveParams) -> ProgressiveParams:
        return params

    def stages(self, params: ProgressiveParams, context: StageContext) -> list[Stage]:
        if params.intermediate is not None:
            intermediate = Candidate.parse(params.intermediate, "progressive.intermediate")
        else:
            intermediate = choose_intermediate(context)
        return [
            Stage("intermediate", intermediate, "task", True),
            Stage("student", context.student, "previous", True),
        ]


LOSSES.add(ProgressiveFamily.name, ProgressiveFamily())
