"""`edgedistill distill`: train one student from the task's teachers with the chosen losses.

plan_distill checks everything that can be checked without training (recipe, student spec,
losses and their parameters, teachers, flags, the output folder); run_distill checks every
stage's layer pairs against the models, loads the teachers, then trains stage after stage
(one, or several for born-again / progressive) with a resumable checkpoint in the output folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill import atomic
from edgedistill.errors import UserInputError
from edgedistill.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.distill.ddp import DistContext
    from edgedistill.distill.interrupt import StopFlag
    from edgedistill.distill.objective import WeightedTerm
    from edgedistill.distill.stages import Stage
    from edgedistill.students import Candidate
    from edgedistill.tasks.recipe import LossSpec, TaskRecipe, TrainSpec

log = logging.getLogger(__name__)
RUN_FILE = "run.json"


@dataclass
class DistillOptions:
    """What the user asked for; None = not given (the recipe's value, or the resumed run's)."""

    task: str | None = None
    student: str | None = None
    teachers: list[str] | None = None
    losses: list[str] | None = None
    layers: list[str] | None = None
    labels_fraction: float | None = None
    epochs: int | None = None
    seed: int | None = None
    workers: int | None = None
    cache: bool | None = None
    out: Path | None = None
    resume: bool = False


DEFAULTS: dict[str, Any] = {
    "task": "digits",
    "labels_fraction": 1.0,
    "seed": 0,
    "workers": 0,
    "cache": True,
}
# Settings that change what is learned: a resumed run must keep them.
LEARNING_FIELDS = (
    "task",
    "student",
    "teachers",
    "losses",
    "layers",
    "labels_fraction",
    "epochs",
    "seed",
)


@dataclass
class DistillPlan:
    options: DistillOptions
    recipe: TaskRecipe
    candidate: Candidate
    loss_specs: list[LossSpec]
    terms: list[WeightedTerm]
    procedure: tuple[Any, Any] | None  # (family, params)
    teacher_refs: list[str]
    train_spec: TrainSpec
    out: Path
    digest: str
    notes: list[str] = field(default_factory=list)


def default_out(student: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in student)
    return Path("edgedistill-runs") / f"distill-{safe}-{stamp}"


def _resumed_options(options: DistillOptions) -> DistillOptions:
    """Fill the options of `--resume` from the run's own run.json; refuse changed settings."""
    if options.out is None:
        raise UserInputError("--resume: give --out DIR, the folder of the run to continue")
    run_file = options.out / RUN_FILE
    if not run_file.is_file():
        raise UserInputError(f"--resume: {options.out} holds no {RUN_FILE}; nothing to resume")
    stored = json.loads(run_file.read_text())["options"]
    merged = dict(stored)
    for name in LEARNING_FIELDS + ("workers", "cache"):
        given = getattr(options, name)
        if given is None:
            continue
        if name in LEARNING_FIELDS and given != stored.get(name):
            flag = "--" + name.replace("_", "-")
            raise UserInputError(
                f"{flag}: the run in {options.out} was started with {stored.get(name)!r}, not "
                f"{given!r}; resume it with the same settings (or leave the flag out)"
            )
        merged[name] = given
    return DistillOptions(**{**merged, "out": options.out, "resume": True})


def plan_distill(options: DistillOptions) -> DistillPlan:
    """Validate every input up front. Raises UserInputError naming the flag, file or field."""
    from edgedistill.distill import teachers
    from edgedistill.distill.losses import LOSSES
    from edgedistill.distill.objective import build_terms
    from edgedistill.students import FAMILIES, Candidate
    from edgedistill.tasks.recipe import LossSpec, load_recipe

    if options.resume:
        options = _resumed_options(options)
    else:
        options = DistillOptions(
            **{k: (DEFAULTS.get(k) if v is None else v) for k, v in asdict(options).items()}
        )
    if options.student is None:
        raise UserInputError("--student: required (a spec as printed by `edgedistill search`)")
    recipe = load_recipe(options.task or "digits")
    candidate = Candidate.parse(options.student)
    FAMILIES.get(candidate.family).validate(candidate)
    if options.epochs is not None and options.epochs < 1:
        raise UserInputError(f"--epochs: must be at least 1, got {options.epochs}")
    fraction = options.labels_fraction
    if fraction is None or not 0 < fraction <= 1:
        raise UserInputError(f"--labels-fraction: must be in (0, 1], got {fraction}")
    if (options.workers or 0) < 0:
        raise UserInputError(f"--workers: must be 0 or more, got {options.workers}")

    specs = list(recipe.distill.losses)
    if options.losses is not None:
        by_name = {spec.name: spec for spec in specs}
        specs = []
        for name in options.losses:
            if name not in LOSSES:
                raise UserInputError(f"--loss: {LOSSES.unknown_message(name)}")
            specs.append(by_name.get(name) or LossSpec(name=name))
        if len({s.name for s in specs}) != len(specs):
            raise UserInputError(
                f"--loss: each loss may appear once, got {','.join(options.losses)}"
            )
    if options.layers is not None:
        specs = [_with_pairs(spec, options.layers) for spec in specs]
    procedures = [s for s in specs if LOSSES.get(s.name).kind == "procedure"]
    if len(procedures) > 1:
        raise UserInputError(
            f"--loss: at most one of born-again, progressive; got {len(procedures)}"
        )
    procedure = None
    if procedures:
        family = LOSSES.get(procedures[0].name)
        procedure = (family, family.build(procedures[0].parsed()))
    terms = build_terms(specs)
    if not terms:
        specs = [*specs, LossSpec(name="kd")]
        terms = build_terms(specs)
    if procedure is not None and not any(t.term.needs_teacher for t in terms):
        raise UserInputError(
            f"--loss: {procedure[0].name} trains each stage from the previous one; add a loss "
            "that learns from a teacher (kd, dkd, multi-teacher, mse, fitnet, at)"
        )

    refs = options.teachers or [teachers.TASK, *recipe.distill.teachers]
    for ref in refs:
        teachers.check_ref(ref)
    for weighted in terms:
        check = getattr(weighted.term, "check_teachers", None)
        if check is not None:
            try:
                check(len(refs))
            except ValueError as exc:
                raise UserInputError(f"--teacher / loss {weighted.name}: {exc}") from None

    train_spec = recipe.distill.train
    if options.epochs is not None:
        train_spec = train_spec.model_copy(update={"epochs": options.epochs})
    out = options.out or default_out(candidate.spec)
    _check_out(out, options.resume)
    options.out = out
    material = {
        "recipe": recipe.model_dump(mode="json"),
        "student": candidate.spec,
        "losses": [s.model_dump(mode="json") for s in specs],
        "teachers": refs,
        "train": train_spec.model_dump(mode="json"),
        "labels_fraction": fraction,
        "seed": options.seed,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
    return DistillPlan(
        options, recipe, candidate, specs, terms, procedure, refs, train_spec, out, digest
    )


def _with_pairs(spec: LossSpec, layers: list[str]) -> LossSpec:
    from edgedistill.distill.losses import LOSSES
    from edgedistill.tasks.recipe import LossSpec

    if "pairs" not in LOSSES.get(spec.name).params_model.model_fields:
        return spec
    try:
        return LossSpec(name=spec.name, weight=spec.weight, params={**spec.params, "pairs": layers})
    except ValueError as exc:
        raise UserInputError(f"--layers: {exc}") from None


def _check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: exists and is not a directory")
    if not resume and out.is_dir() and any(out.iterdir()):
        raise UserInputError(
            f"--out {out}: directory exists and is not empty; choose a new one, or add --resume "
            "to continue the run in it"
        )


@dataclass
class StageResult:
    name: str
    student: str
    teacher: str
    accuracy: float
    val_accuracy: float
    teacher_accuracy: float | None
    best_epoch: int
    epochs_run: int
    seconds: float
    teacher_outputs: dict[str, str]
    resumed: bool = False


def run_distill(
    plan: DistillPlan,
    progress: ProgressFn = no_progress,
    stop: StopFlag | None = None,
    context: DistContext | None = None,
) -> dict[str, Any]:
    """Train every stage; returns the result document (written as DIR/result.json by rank 0)."""
    import torch

    from edgedistill.distill import ddp, teachers
    from edgedistill.distill.labels import with_labels_fraction
    from edgedistill.latency.costs import model_cost
    from edgedistill.students import build_student
    from edgedistill.tasks.data import load_task_data

    started = time.perf_counter()
    options, recipe = plan.options, plan.recipe
    main = ddp.is_main(context)
    if main and not (plan.out / RUN_FILE).is_file():
        document = {"options": _options_document(options), "digest": plan.digest}
        atomic.write_json(plan.out / RUN_FILE, document)
    device = ddp.training_device(context)
    data = load_task_data(recipe)
    num_classes = len(recipe.labels)
    train_split, labeled = with_labels_fraction(
        data.train, options.labels_fraction or 1.0, options.seed or 0
    )
    example = torch.stack([data.train[i][0] for i in range(min(2, len(data.train)))])
    task_arch = teachers.architecture(plan.teacher_refs[0], recipe, data.input_shape, num_classes)
    stages = _stages(plan, data.input_shape, num_classes, task_arch)
    _check_stages(plan, stages, example, data.input_shape, num_classes, task_arch)

    task_teachers: list[teachers.LoadedTeacher] = []
    if any(stage.teacher == "task" for stage in stages):
        task_teachers = _load_task_teachers(plan, data, progress, context)
    student_cost = model_cost(
        build_student(plan.candidate, data.input_shape, num_classes), data.input_shape
    )
    results: list[StageResult] = []
    previous: tuple[nn.Module, StageResult] | None = None
    for index, stage in enumerate(stages):
        if stage.teacher == "task":
            stage_teachers = task_teachers
        elif stage.teacher == "previous" and previous is not None:
            stage_teachers = [
                teachers.LoadedTeacher(previous[1].name, previous[0], previous[1].accuracy)
            ]
        else:
            stage_teachers = []
        model, result = _run_stage(
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
        from edgedistill.distill.cache import teacher_digest

        digest = (teacher_digest(final_model) or "")[:16]
        log.info("rank %d: student weights sha256 %s", context.rank, digest)
    document = _result_document(plan, data, labeled, task_teachers, results, final, student_cost)
    document["seconds"] = round(time.perf_counter() - started, 3)
    document["world_size"] = context.world if context else 1
    document["device"] = str(device)
    if main:
        from edgedistill.distill.checkpoint import save_weights

        save_weights(plan.out, final_model, _student_meta(plan, data, final))
        atomic.write_json(plan.out / "result.json", document)
    return document


def _options_document(options: DistillOptions) -> dict[str, Any]:
    document = asdict(options)
    document["out"] = str(options.out)
    document.pop("resume")
    return document


def _stages(plan: DistillPlan, input_shape, num_classes: int, task_arch) -> list[Stage]:
    from edgedistill.distill.stages import StageContext, single_stage
    from edgedistill.latency.costs import model_cost

    needs_teacher = any(t.term.needs_teacher for t in plan.terms)
    if plan.procedure is None:
        return single_stage(plan.candidate, needs_teacher)
    family, params = plan.procedure
    teacher_macs = None
    if task_arch is not None:
        teacher_macs = model_cost(task_arch, input_shape).macs
    context = StageContext(plan.candidate, tuple(input_shape), num_classes, teacher_macs)
    return family.stages(params, context)


def _check_stages(plan, stages, example, input_shape, num_classes: int, task_arch) -> None:
    """Every stage's student builds and its layer pairs resolve: refused before any training."""
    from edgedistill.distill.objective import check_layers
    from edgedistill.students import FAMILIES, build_student

    previous = None
    for stage in stages:
        FAMILIES.get(stage.candidate.family).validate(stage.candidate)
        student = build_student(stage.candidate, input_shape, num_classes)
        if stage.with_terms and stage.teacher != "none":
            teacher = task_arch if stage.teacher == "task" else previous
            where = f" (stage {stage.name})" if len(stages) > 1 else ""
            check_layers(plan.terms, student, teacher, example, where)
        previous = student


def _load_task_teachers(plan, data, progress, context):
    """Rank 0 loads first (it may train the built-in teacher); the others then read the cache."""
    from edgedistill.distill import ddp, teachers

    loaded = []
    if ddp.is_main(context):
        loaded = [teachers.load(ref, plan.recipe, data, progress) for ref in plan.teacher_refs]
    ddp.barrier(context)
    if not ddp.is_main(context):
        loaded = [teachers.load(ref, plan.recipe, data) for ref in plan.teacher_refs]
    feature_terms = [t.name for t in plan.terms if t.term.pairs]
    if feature_terms and loaded and loaded[0].logits_only:
        raise UserInputError(
            f"loss {', '.join(feature_terms)}: the teacher {loaded[0].name} gives logits only "
            "(no layers to compare); use kd, dkd, multi-teacher or mse"
        )
    return loaded


def _stage_terms(plan: DistillPlan, stage: Stage):
    from edgedistill.distill.losses.ce import CrossEntropyTerm
    from edgedistill.distill.objective import WeightedTerm

    return plan.terms if stage.with_terms else [WeightedTerm("ce", 1.0, CrossEntropyTerm())]


def _run_stage(
    plan, stage, index, stage_teachers, data, train_split, example, device, context, progress, stop
):
    import torch

    from edgedistill.distill import ddp
    from edgedistill.distill.cache import choose_outputs, teacher_digest
    from edgedistill.distill.checkpoint import load_weights, save_weights
    from edgedistill.distill.objective import build_objective
    from edgedistill.distill.teacher_outputs import TeacherRunner
    from edgedistill.distill.trainer import TrainOptions, accuracy, train
    from edgedistill.students import build_student

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
        return student.eval(), StageResult(**stored)

    terms = _stage_terms(plan, stage)
    where = f" (stage {stage.name})" if stage.name != "student" else ""
    teacher_model = stage_teachers[0].model if stage_teachers else None
    objective = build_objective(terms, student, teacher_model, example, where)
    runner = outputs = None
    mode = {"mode": "none", "reason": "no loss reads a teacher"}
    if objective.needs_teacher:
        runner = TeacherRunner([t.model for t in stage_teachers], objective.teacher_layers, device)
        outputs = choose_outputs(
            runner,
            train_split,
            _data_identity(recipe, data, train_split),
            random_augment=plan.train_spec.augment.is_random,
            use_cache=bool(options.cache),
            workers=options.workers or 0,
            context=context,
        )
        mode = {"mode": outputs.mode, "reason": outputs.reason}
        if outputs.mode == "online":
            log.info("stage %s: teacher runs online: %s", stage.name, outputs.reason)
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
        accuracy=accuracy(student, data.test),
        val_accuracy=trained.best_val_accuracy,
        teacher_accuracy=teacher_accuracy,
        best_epoch=trained.best_epoch,
        epochs_run=trained.epochs_run,
        seconds=round(trained.seconds, 3),
        teacher_outputs=mode,
        resumed=trained.resumed,
    )
    if ddp.is_main(context):
        save_weights(folder, student, {"spec": stage.candidate.spec, "stage": stage.name})
        atomic.write_json(done, {"digest": digest, "result": asdict(result)})
    return student, result


def _data_identity(recipe, data, train_split) -> dict[str, Any]:
    """What the teacher's inputs depend on: the data, the split and the transform."""
    return {
        "fingerprint": data.fingerprint,
        "split": "train",
        "samples": len(train_split),
        "input": recipe.input.model_dump(mode="json"),
        "preprocessing": recipe.preprocessing.model_dump(mode="json"),
    }


def _student_meta(plan: DistillPlan, data, final: StageResult) -> dict[str, Any]:
    return {
        "spec": plan.candidate.spec,
        "task": plan.recipe.name,
        "input_shape": list(data.input_shape),
        "num_classes": len(plan.recipe.labels),
        "losses": [s.name for s in plan.loss_specs],
        "best_epoch": final.best_epoch,
        "accuracy": final.accuracy,
    }


def _result_document(plan, data, labeled, task_teachers, results, final, student_cost):
    from edgedistill.latency.costs import model_cost

    teacher_rows = []
    for teacher in task_teachers:
        cost = model_cost(teacher.model, data.input_shape)
        teacher_rows.append(
            {
                "name": teacher.name,
                "accuracy": teacher.test_accuracy,
                "params": cost.params,
                "macs": cost.macs,
            }
        )
    teacher_accuracy = task_teachers[0].test_accuracy if task_teachers else None
    return {
        "task": plan.recipe.name,
        "student": plan.candidate.spec,
        "params": student_cost.params,
        "macs": student_cost.macs,
        "method": "+".join(s.name for s in plan.loss_specs),
        "losses": [s.model_dump(mode="json") for s in plan.loss_specs],
        "accuracy": final.accuracy,
        "val_accuracy": final.val_accuracy,
        "teacher_accuracy": teacher_accuracy,
        "retention": final.accuracy / teacher_accuracy if teacher_accuracy else None,
        "epochs_run": final.epochs_run,
        "best_epoch": final.best_epoch,
        "train_seconds": round(sum(r.seconds for r in results), 3),
        "labels_fraction": plan.options.labels_fraction,
        "labeled_samples": labeled,
        "train_samples": len(data.train),
        "teacher_outputs": final.teacher_outputs,
        "teachers": teacher_rows,
        "stages": [asdict(r) for r in results],
        "resumed": any(r.resumed for r in results),
        "seed": plan.options.seed,
        "out": str(plan.out),
    }
