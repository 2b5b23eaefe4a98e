"""Born-again networks (Furlanello, Lipton, Tschannen, Itti & Anandkumar 2018, arXiv:1805.04770).

Self-distillation over generations of one architecture: generation 0 is the student trained on
the labels alone (or from the task's teacher with `first: teacher`); generation k learns from
generation k-1 with the run's teacher losses (kd by default). Every generation's accuracy is
reported; the last generation is the result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgedistill.distill.losses._registry import LOSSES, LossParams
from edgedistill.distill.stages import Stage, StageContext


class BornAgainParams(LossParams):
    generations: int = Field(2, ge=1, le=20, description="generations after generation 0")
    first: Literal["labels", "teacher"] = Field(
        "labels", description="how generation 0 learns: the labels alone, or the task's teacher"
    )


@LOSSES.register("born-again")
class BornAgainFamily:
    name = "born-again"
    kind = "procedure"
    task_types = ("classification",)
    needs_teacher = False  # generation 0 needs no external teacher unless first: teacher
    params_model = BornAgainParams

    def build(self, params: BornAgainParams) -> BornAgainParams:
        return params

    def uses_task_teacher(self, params: BornAgainParams) -> bool:
        return params.first == "teacher"

    def stages(self, params: BornAgainParams, context: StageContext) -> list[Stage]:
        student = context.student
        if params.first == "teacher":
            first = Stage("generation-0", student, "task", True)
        else:
            first = Stage("generation-0", student, "none", False)
        later = [
            Stage(f"generation-{k}", student, "previous", True)
            for k in range(1, params.generations + 1)
        ]
        return [first, *later]
