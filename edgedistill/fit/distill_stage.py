"""The distill stage of `fit`: the same plan `edgedistill distill` runs (the recipe's losses,
procedures and extra teachers), trained into the run's checkpoint/ folder, so that an
interrupted fit continues from the last finished stage and epoch checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import ddp
from edgedistill.distill.interrupt import StopFlag
from edgedistill.distill.plan import DistillPlan, build_plan
from edgedistill.distill.qat import QatRequest, run_qat
from edgedistill.distill.run import run_distill
from edgedistill.distill.teacher_training import load_teacher
from edgedistill.fit.plan import FitPlan
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.distill import DistillResult
from edgedistill.records.quant import QuantResult
from edgedistill.students.candidate import Candidate
from edgedistill.teachers import Teacher

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.ddp import DistContext


@dataclass
class DistilledStudent:
    model: nn.Module  # the PyTorch student, fp32, eval mode
    candidate: Candidate
    result: DistillResult
    teacher: Teacher  # the task's teacher, loaded (trained first if it had to be)
    plan: DistillPlan
    quantized: nn.Module | None = None  # int8: the fake-quantized student that ships
    quantization: QuantResult | None = None

    @property
    def shipped(self) -> nn.Module:
        """The model the export chain converts: quantized when the run deploys int8."""
        return self.quantized if self.quantized is not None else self.model

    @property
    def notes(self) -> list[str]:
        stages = self.result.stages
        notes = [f"student initialised: {s.init}" for s in stages if s.init]
        notes += list(self.quantization.notes) if self.quantization else []
        if len(stages) < 2:
            return notes
        trained = ", ".join(f"{s.name} ({s.student}, accuracy {s.accuracy:.4f})" for s in stages)
        return [f"distilled in {len(stages)} stages ({self.result.method}): {trained}", *notes]


def teacher_stage(
    plan: FitPlan, progress: ProgressFn = no_progress, context: DistContext | None = None
) -> Teacher:
    """The task's teacher, loaded; rank 0 first (it may train the built-in one), then the
    other ranks read it from the cache."""
    seed = plan.options.seed
    teacher = load_teacher(plan.teacher, seed, progress) if ddp.is_main(context) else None
    ddp.barrier(context)
    return teacher if teacher is not None else load_teacher(plan.teacher, seed, no_progress)


def distill_stage(
    plan: FitPlan,
    candidate: Candidate,
    teacher: Teacher,
    folder: Path,
    progress: ProgressFn = no_progress,
    stop: StopFlag | None = None,
    context: DistContext | None = None,
) -> DistilledStudent:
    """Distill `candidate` from the plan's teacher(s) into `folder` (resumable)."""
    options = plan.distill_options(candidate.spec, folder)
    distill_plan = build_plan(
        options, plan.task, candidate, teacher=plan.teacher, loaded_teacher=teacher
    )
    model, result = run_distill(distill_plan, progress, stop, context)
    return DistilledStudent(model, candidate, result, teacher, distill_plan)


def quantize_stage(
    plan: FitPlan,
    distilled: DistilledStudent,
    folder: Path,
    progress: ProgressFn = no_progress,
    stop: StopFlag | None = None,
    context: DistContext | None = None,
) -> DistilledStudent:
    """int8 runs: calibrate the distilled student, then fine-tune it quantized (QAT) with the
    same loss recipe, into `folder` (resumable). Other precisions pass through."""
    if plan.precision != "int8" or plan.quant_scheme is None:
        return distilled
    request = QatRequest(plan.quant_scheme, enabled=plan.options.qat)
    quantized, result = run_qat(
        distilled.plan,
        distilled.model,
        request,
        folder,
        distilled.result.accuracy,
        progress,
        stop,
        context,
    )
    return replace(distilled, quantized=quantized, quantization=result)
