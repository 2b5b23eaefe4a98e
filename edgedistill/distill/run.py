"""Running a distillation plan (`edgedistill distill`, and the distill stage of `fit`): check
every stage's layer pairs against the models, load the teachers, train stage after stage (one,
or several for born-again / progressive), write the student and result.json into the run
folder (rank 0 only under torchrun). A stage finished by an earlier, interrupted invocation is
loaded, and a stage interrupted mid-way continues from its last epoch checkpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from edgedistill import atomic, ddp
from edgedistill.distill.labels import with_labels_fraction
from edgedistill.distill.objective import check_layers
from edgedistill.distill.plan import RUN_FILE, DistillOptions, DistillPlan
from edgedistill.distill.stages import Stage, StageContext, single_stage
from edgedistill.distill.teacher_training import load_teacher
from edgedistill.distill.train_stage import run_stage
from edgedistill.latency.costs import ModelCost, model_cost
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.distill import DistillResult, StageResult, TeacherRow
from edgedistill.students import FAMILIES, build_student
from edgedistill.students.checkpoint import save_weights
from edgedistill.teachers import Teacher
from edgedistill.teachers.cache import teacher_digest
from edgedistill.teachers.earlier_run import TASK, build_earlier_run, load_earlier_run

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.ddp import DistContext
    from edgedistill.distill.interrupt import StopFlag

log = logging.getLogger(__name__)


def run_distill(
    plan: DistillPlan,
    progress: ProgressFn = no_progress,
    stop: StopFlag | None = None,
    context: DistContext | None = None,
) -> tuple[nn.Module, DistillResult]:
    """Train every stage: (the final student, its result).
    Rank 0 writes DIR/run.json first and DIR/result.json + the student's weights last."""
    import torch

    started = time.perf_counter()
    options, recipe = plan.options, plan.recipe
    main = ddp.is_main(context)
    if main and not (plan.out / RUN_FILE).is_file():
        document = {"options": _options_document(options), "digest": plan.digest}
        atomic.write_json(plan.out / RUN_FILE, document)
    device = ddp.training_device(context)
    data = plan.task.data
    num_classes = len(recipe.labels)
    train_split, labeled = with_labels_fraction(
        data.train, options.labels_fraction or 1.0, options.seed or 0
    )
    example = torch.stack([data.train[i][0] for i in range(min(2, len(data.train)))])
    task_arch = _architecture(plan, data.input_shape, num_classes)
    stages = _stages(plan, data.input_shape, num_classes, task_arch)
    _check_stages(plan, stages, example, data.input_shape, num_classes, task_arch)

    task_teachers: list[Teacher] = []
    if any(stage.teacher == "task" for stage in stages):
        task_teachers = load_task_teachers(plan, data, progress, context)
    student_cost = model_cost(
        build_student(plan.candidate, data.input_shape, num_classes), data.input_shape
    )
    results: list[StageResult] = []
    previous: tuple[nn.Module, StageResult] | None = None
    for index, stage in enumerate(stages):
        if stage.teacher == "task":
            stage_teachers = task_teachers
        elif stage.teacher == "previous" and previous is not None:
            model, result = previous
            cost = model_cost(model, data.input_shape)
            stage_teachers = [
                Teacher(result.name, model, cost.params, cost.macs, result.accuracy, form="stage")
            ]
        else:
            stage_teachers = []
        model, result = run_stage(
            plan,
            stage,
            index,
            stage_teachers,
            data,
            train_split,
            example,
            device,
            context,
            progress,
            stop,
        )
        results.append(result)
        previous = (model, result)
    assert previous is not None
    final_model, final = previous
    if context is not None:
        digest = (teacher_digest(final_model) or "")[:16]
        log.info("rank %d: student weights sha256 %s", context.rank, digest)
    document = _result(plan, data, labeled, task_teachers, results, final, student_cost)
    document.seconds = round(time.perf_counter() - started, 3)
    document.world_size = context.world if context else 1
    document.device = str(device)
    if main:
        save_weights(plan.out, final_model, _student_meta(plan, data, final))
        atomic.write_json(plan.out / "result.json", document.model_dump(mode="json"))
    return final_model, document


def _options_document(options: DistillOptions) -> dict[str, Any]:
    document = asdict(options)
    document["out"] = str(options.out)
    document.pop("resume")
    return document


def _architecture(plan: DistillPlan, input_shape, num_classes: int):
    """The first teacher's module without training it (trained weights where they are at
    hand), to check layer names and shapes before any training; None without a teacher."""
    ref = plan.teacher_refs[0] if plan.teacher_refs else None
    if ref == TASK:
        return plan.teacher.architecture() if plan.teacher is not None else None
    return build_earlier_run(ref, input_shape, num_classes) if ref is not None else None


def _stages(plan: DistillPlan, input_shape, num_classes: int, task_arch) -> list[Stage]:
    needs_teacher = any(t.term.needs_teacher for t in plan.terms)
    if plan.procedure is None:
        return single_stage(plan.candidate, needs_teacher)
    family, params = plan.procedure
    teacher_macs = getattr(plan.teacher, "macs", None)  # known for ONNX teachers
    if teacher_macs is None and task_arch is not None:
        teacher_macs = model_cost(task_arch, input_shape).macs
    context = StageContext(plan.candidate, tuple(input_shape), num_classes, teacher_macs)
    return family.stages(params, context)


def _check_stages(plan, stages, example, input_shape, num_classes: int, task_arch) -> None:
    """Every stage's student builds and its layer pairs resolve: refused before any training."""
    previous = None
    for stage in stages:
        FAMILIES.get(stage.candidate.family).validate(stage.candidate)
        student = build_student(stage.candidate, input_shape, num_classes)
        if stage.with_terms and stage.teacher != "none":
            teacher = task_arch if stage.teacher == "task" else previous
            where = f" (stage {stage.name})" if len(stages) > 1 else ""
            check_layers(plan.terms, student, teacher, example, where)
        previous = student


def load_task_teachers(plan: DistillPlan, data, progress, context) -> list[Teacher]:
    """Rank 0 loads first (it may train the built-in teacher); the others then read the cache."""
    num_classes = len(plan.recipe.labels)
    seed = plan.options.seed or 0

    def load_all(report: ProgressFn) -> list[Teacher]:
        loaded = []
        for ref in plan.teacher_refs:
            if ref == TASK and plan.loaded_teacher is not None:
                loaded.append(plan.loaded_teacher)
            elif ref == TASK:
                assert plan.teacher is not None  # prepared by build_plan
                loaded.append(load_teacher(plan.teacher, seed, report))
            else:
                loaded.append(load_earlier_run(ref, data, num_classes))
        return loaded

    loaded = load_all(progress) if ddp.is_main(context) else []
    ddp.barrier(context)
    return loaded if ddp.is_main(context) else load_all(no_progress)


def _student_meta(plan: DistillPlan, data, final: StageResult) -> dict[str, Any]:
    return {
        "spec": plan.candidate.spec,
        "task": plan.recipe.name,
        "input_shape": list(data.input_shape),
        "num_classes": len(plan.recipe.labels),
        "losses": [s.name for s in plan.loss_specs],
        "best_epoch": final.best_epoch,
        "accuracy": final.accuracy,
        "history": final.history,
    }


def _result(
    plan: DistillPlan,
    data,
    labeled: int,
    task_teachers: list[Teacher],
    results: list[StageResult],
    final: StageResult,
    student_cost: ModelCost,
) -> DistillResult:
    teacher_accuracy = task_teachers[0].test_accuracy if task_teachers else None
    return DistillResult(
        task=plan.recipe.name,
        student=plan.candidate.spec,
        params=student_cost.params,
        macs=student_cost.macs,
        method="+".join(s.name for s in plan.loss_specs),
        losses=[s.model_dump(mode="json") for s in plan.loss_specs],
        accuracy=final.accuracy,
        val_accuracy=final.val_accuracy,
        teacher_accuracy=teacher_accuracy,
        retention=final.accuracy / teacher_accuracy if teacher_accuracy else None,
        epochs_run=final.epochs_run,
        best_epoch=final.best_epoch,
        train_seconds=round(sum(r.seconds for r in results), 3),
        labels_fraction=plan.options.labels_fraction,
        labeled_samples=labeled,
        train_samples=len(data.train),
        teacher_outputs=final.teacher_outputs,
        teachers=[
            TeacherRow(name=t.name, accuracy=t.test_accuracy, params=t.params, macs=t.macs)
            for t in task_teachers
        ],
        stages=results,
        resumed=any(r.resumed for r in results),
        seed=plan.options.seed,
        out=str(plan.out),
        notes=list(plan.task.notes),
    )
