"""`fit`: search -> distill -> export -> measure -> bundle, in one run.

Every input is checked (plan.py) before any training starts. The run directory is assembled
under a stable staging name beside --out (run_dir.py) and renamed into place only when the
whole run has succeeded; an interrupted run is continued with `--resume`: the search keeps its
recorded choice, distillation continues from its last finished stage and epoch checkpoint,
export, measurements and bundle are made again.

Under `torchrun --nproc-per-node N -m edgedistill fit ...` every rank plans and distills;
rank 0 alone searches, exports, measures and writes; the others return None after training.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic, ddp
from edgedistill.bundle.report import write_report
from edgedistill.bundle.writer import write_bundle
from edgedistill.ddp import DistContext
from edgedistill.distill.interrupt import StopFlag, TrainingStopped
from edgedistill.errors import OutputWriteError
from edgedistill.export.chain import export_chain
from edgedistill.export.context import ExportContext
from edgedistill.export.preflight import preflight
from edgedistill.fit import run_dir
from edgedistill.fit.distill_stage import distill_stage, quantize_stage, teacher_stage
from edgedistill.fit.evaluation_stage import evaluation_stage
from edgedistill.fit.flags import result_flags
from edgedistill.fit.measure import measure_stage
from edgedistill.fit.plan import FitOptions, FitPlan, plan_fit
from edgedistill.fit.search import ChosenStudent, SearchSettings, search_stage
from edgedistill.fit.summary import build_summary
from edgedistill.inputs import example_input
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.summary import RunSummary
from edgedistill.students import build_student
from edgedistill.students.checkpoint import QUANTIZED_FOLDER

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

__all__ = ["FitOptions", "FitPlan", "plan_fit", "run_fit"]


class _Clock:
    """Seconds per stage, for summary.json's stages_s."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._started = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = now - self._started
        self._started = now


def run_fit(
    plan: FitPlan,
    progress: ProgressFn = no_progress,
    stop: StopFlag | None = None,
    context: DistContext | None = None,
) -> RunSummary | None:
    """Run every stage; on success the run directory appears at plan.out. An interrupted run
    (Ctrl-C, kill) or one that ran out of room to write (disk full, quota) stays staged for
    `--resume`; a failed one is removed. None on ranks > 0."""
    main = ddp.is_main(context)
    staging = run_dir.staging_for(plan.out)
    if main:
        run_dir.open_staging(plan.out, plan.options.learning(), plan.options.resume)
    ddp.barrier(context)
    try:
        summary = _run_stages(plan, staging, progress, stop, context)
        if main:
            run_dir.finish(staging, plan.out)
    except (TrainingStopped, KeyboardInterrupt, OutputWriteError):
        raise  # kept staged: `fit --out DIR --resume` continues it (once there is room)
    except OSError as exc:
        failed = OutputWriteError.from_os_error(exc)  # a write outside atomic.py
        if failed is not None:
            raise failed from None
        if main:
            run_dir.discard(staging)
        raise
    except BaseException:
        if main:
            run_dir.discard(staging)
        raise
    return summary


def _run_stages(
    plan: FitPlan,
    staging: Path,
    progress: ProgressFn,
    stop: StopFlag | None,
    context: DistContext | None,
) -> RunSummary | None:

    recipe = plan.recipe
    data = plan.task.data
    input_shape = data.input_shape
    main = ddp.is_main(context)
    clock = _Clock()

    example = example_input(input_shape)
    export_context = ExportContext.for_profile(plan.profile, recipe.preprocessing, recipe.labels)
    # Rank 0 searches and sends its choice (a failure there ends the torchrun job).
    chosen = _search(plan, staging, example, export_context, progress) if main else None
    chosen = ddp.broadcast(context, chosen)
    clock.lap("search")

    teacher = teacher_stage(plan, progress, context)
    clock.lap("teacher")

    if main:
        _adopt_shared_student(plan, chosen, staging / "checkpoint")
    ddp.barrier(context)
    distilled = distill_stage(
        plan, chosen.candidate, teacher, staging / "checkpoint", progress, stop, context
    )
    clock.lap("distill")
    distilled = quantize_stage(plan, distilled, staging / QUANTIZED_FOLDER, progress, stop, context)
    if distilled.quantization is not None:
        clock.lap("quantize")
    if not main:
        return None
    stop = stop or StopFlag()  # stages after training stop at their boundaries

    stop.check("export")
    bundle = staging / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)  # a resumed run exports again
    artifacts = export_chain(
        plan.formats,
        plan.precision,
        distilled.shipped,
        example,
        bundle,
        data,
        progress,
        context=export_context,
        pending=plan.pending,
    )
    clock.lap("export")
    stop.check("measurement")

    measured = measure_stage(plan, artifacts, distilled.teacher, example, progress)
    clock.lap("bench")
    stop.check("evaluation")

    evaluated = evaluation_stage(
        artifacts,
        distilled.shipped,
        distilled.teacher.model,
        data,
        recipe.task_type,
        recipe.labels,
        bundle,
        plan.options.cascade_target / 100,
        progress,
    )
    clock.lap("evaluate")
    stop.check("bundling")

    notes = [*plan.notes, *chosen.notes, *distilled.notes, *measured.notes, *evaluated.notes]
    summary = build_summary(
        plan, chosen, distilled, artifacts, measured, notes, clock.stages, staging
    ).model_copy(update={"evaluation": evaluated.evaluation})
    flags = result_flags(summary)
    for flag in flags:
        log.warning(flag)
    summary = summary.model_copy(update={"warnings": flags, "notes": [*summary.notes, *flags]})
    write_bundle(bundle, summary, plan.profile, evaluated.validation_sample)
    atomic.write_json(staging / "summary.json", summary.model_dump(mode="json"))
    write_report(staging)
    return summary


def _adopt_shared_student(plan: FitPlan, chosen: ChosenStudent, folder: Path) -> None:
    """Fit of several devices: a student another device's run distilled already is copied in,
    so the distill stage finds it finished (its settings digest matches) and trains nothing."""
    shared = plan.shared_checkpoints.get(chosen.candidate.spec)
    if shared is None or folder.exists():
        return
    shutil.copytree(shared, folder)
    chosen.notes.append(
        f"student {chosen.candidate.spec} shared with {shared.parent.name}: distilled once"
    )


def _search(
    plan: FitPlan,
    staging: Path,
    example: torch.Tensor,
    export_context: ExportContext,
    progress: ProgressFn,
) -> ChosenStudent:
    """Choose the student (search.json), then convert an untrained copy of it to every format,
    so that a layer a target cannot take is refused before any training."""
    input_shape, num_classes = plan.task.data.input_shape, len(plan.recipe.labels)
    settings = SearchSettings(
        plan.options.threads,
        plan.options.calibration_samples,
        plan.options.verify_on_device,
        plan.quant_scheme,
        tuple(plan.targets),
        plan.task.data.vocabulary,
    )
    chosen = search_stage(
        plan.profile,
        plan.precision,
        plan.budget_ms,
        input_shape,
        num_classes,
        staging,
        settings,
        progress,
    )
    untrained = build_student(chosen.candidate, input_shape, num_classes)
    preflight(
        plan.formats,
        plan.precision,
        untrained,
        example,
        export_context,
        progress,
        scheme=plan.quant_scheme,
    )
    return chosen
