"""Train one stage of a distillation run: build the student and its objective, choose cached
or online teacher outputs, train with a resumable checkpoint, score it on the test split.

A stage already finished by an earlier (interrupted) invocation is loaded instead of trained.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from edgedistill import atomic, ddp
from edgedistill.distill.losses.ce import CrossEntropyTerm
from edgedistill.distill.objective import WeightedTerm, build_objective
from edgedistill.distill.teacher_init import initialise_from_teacher
from edgedistill.distill.trainer import TrainOptions, train
from edgedistill.records.distill import StageResult, TeacherOutputs
from edgedistill.students import build_student
from edgedistill.students.checkpoint import load_weights, save_weights
from edgedistill.tasks.evaluate import score
from edgedistill.teachers.cache import choose_outputs, teacher_digest
from edgedistill.teachers.outputs import TeacherRunner

log = logging.getLogger(__name__)


def run_stage(
    plan, stage, index, stage_teachers, data, train_split, example, device, context, progress, stop
):
    """(trained student, StageResult); checkpointed under plan.out/stages/INDEX-NAME/."""
    import torch

    options, recipe = plan.options, plan.recipe
    folder = plan.out / "stages" / f"{index}-{stage.name}"
    material = [plan.digest, stage.name, stage.candidate.spec, stage.teacher]
    material += [teacher_digest(t.model) or t.name for t in stage_teachers]
    digest = hashlib.sha256(json.dumps(material).encode()).hexdigest()[:16]
    teacher_name = ", ".join(t.name for t in stage_teachers) or "none (labels only)"
    teacher_accuracy = stage_teachers[0].test_accuracy if stage_teachers else None

    torch.manual_seed(options.seed or 0)
    student = build_student(stage.candidate, data.input_shape, len(recipe.labels))
    done = folder / "result.json"
    if done.is_file() and json.loads(done.read_text()).get("digest") == digest:
        load_weights(folder, student)
        stored = json.loads(done.read_text())["result"]
        log.info("stage %s: already trained in %s", stage.name, folder)
        return student.eval(), StageResult.model_validate(stored)

    terms = stage_terms(plan, stage)
    where = f" (stage {stage.name})" if stage.name != "student" else ""
    teacher_model = stage_teachers[0].model if stage_teachers else None
    init = None
    if recipe.distill.init == "teacher":
        init = initialise_from_teacher(student, teacher_model)
    objective = build_objective(terms, student, teacher_model, example, where)
    runner, outputs, mode = teacher_outputs_for(
        plan, objective, stage_teachers, data, train_split, device, context
    )
    if mode["mode"] == "online":
        log.info("stage %s: teacher runs online: %s", stage.name, mode["reason"])
    try:
        trained = train(
            student,
            train_split,
            data.val,
            plan.train_spec,
            objective,
            outputs,
            seed=options.seed or 0,
            progress=progress,
            stage=stage.name,
            options=TrainOptions(
                state_path=folder / "train-state.safetensors",
                resume=True,  # a fresh run's folder is empty, so only --resume finds a state
                run_digest=digest,
                stop=stop,
                context=context,
                device=str(device),
                workers=options.workers or 0,
            ),
        )
    finally:
        if objective.model is not None:
            objective.model.release()
        if runner is not None:
            runner.close()
    student = student.cpu().eval()
    result = StageResult(
        name=stage.name,
        student=stage.candidate.spec,
        teacher=teacher_name,
        accuracy=score(student, data.test),
        val_accuracy=trained.best_val_accuracy,
        teacher_accuracy=teacher_accuracy,
        best_epoch=trained.best_epoch,
        epochs_run=trained.epochs_run,
        seconds=round(trained.seconds, 3),
        teacher_outputs=TeacherOutputs(**mode),
        history=trained.history,
        resumed=trained.resumed,
        init=init,
    )
    if ddp.is_main(context):
        save_weights(folder, student, {"spec": stage.candidate.spec, "stage": stage.name})
        atomic.write_json(done, {"digest": digest, "result": result.model_dump(mode="json")})
    return student, result


def teacher_outputs_for(plan, objective, teachers, data, train_split, device, context):
    """(runner, outputs, mode): the teachers' outputs the objective reads, cached or online;
    (None, None, mode "none") when no term reads a teacher. Close the runner after training."""
    if not objective.needs_teacher:
        return None, None, {"mode": "none", "reason": "no loss reads a teacher"}
    options = plan.options
    runner = TeacherRunner([t.model for t in teachers], objective.teacher_layers, device)
    outputs = choose_outputs(
        runner,
        train_split,
        data_identity(plan.recipe, data, train_split),
        random_augment=plan.train_spec.augment.is_random,
        use_cache=bool(options.cache),
        workers=options.workers or 0,
        context=context,
    )
    return runner, outputs, {"mode": outputs.mode, "reason": outputs.reason}


def data_identity(recipe, data, train_split) -> dict[str, Any]:
    """What the teacher's inputs depend on: the data, the split and the transform."""
    return {
        "fingerprint": data.fingerprint,
        "split": "train",
        "samples": len(train_split),
        "input": recipe.input.model_dump(mode="json"),
        "preprocessing": recipe.preprocessing.model_dump(mode="json"),
    }


def stage_terms(plan, stage):
    """The run's terms, or cross-entropy alone for a stage that learns from the labels."""

    return plan.terms if stage.with_terms else [WeightedTerm("ce", 1.0, CrossEntropyTerm())]
