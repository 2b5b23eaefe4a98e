"""Planning a distillation run: every input checked before anything is trained.

plan_distill (`edgedistill distill`) reads the task (recipe, data and teacher, through the same
loader as `fit`), the student spec, the flags and the output folder (or, with --resume, the
run's own run.json); build_plan, which `fit` calls with its own task, teacher and chosen
student, checks the losses and their parameters and the teachers, and makes the plan that
`run_distill` trains. Bad input is refused naming the flag, file or field.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.distill.losses import LOSSES, check_losses, loss_names, loss_params
from edgedistill.distill.objective import build_terms
from edgedistill.errors import UserInputError
from edgedistill.paths import check_new_out
from edgedistill.students import FAMILIES, Candidate, with_task_knobs
from edgedistill.tasks.recipe import LossSpec
from edgedistill.tasks.task import load_task
from edgedistill.teachers import PreparedTeacher, Teacher, feed_teacher
from edgedistill.teachers.earlier_run import TASK, check_ref, is_earlier_run

if TYPE_CHECKING:
    from edgedistill.distill.objective import WeightedTerm
    from edgedistill.students import Candidate
    from edgedistill.tasks.recipe import LossSpec, TaskRecipe, TrainSpec
    from edgedistill.tasks.task import Task

RUN_FILE = "run.json"


@dataclass
class DistillOptions:
    """What the user asked for; None = not given (the recipe's value, or the resumed run's)."""

    task: str | None = None
    data: str | None = None
    student: str | None = None
    teachers: list[str] | None = None
    teacher_weights: str | None = None
    teacher_preprocess: str | None = None
    losses: list[str] | None = None
    layers: list[str] | None = None
    labels_fraction: float | None = None
    epochs: int | None = None
    seed: int | None = None
    workers: int | None = None
    cache: bool | None = None
    out: Path | None = None
    resume: bool = False


DEFAULT_TERM = {"classification": "kd", "regression": "mse"}
DEFAULTS: dict[str, Any] = {"labels_fraction": 1.0, "seed": 0, "workers": 0, "cache": True}
# Settings that change what is learned: a resumed run must keep them.
LEARNING_FIELDS = (
    "task",
    "data",
    "student",
    "teachers",
    "teacher_weights",
    "teacher_preprocess",
    "losses",
    "layers",
    "labels_fraction",
    "epochs",
    "seed",
)


@dataclass
class DistillPlan:
    options: DistillOptions
    task: Task  # recipe and data
    teacher: PreparedTeacher | None  # the task's teacher, checked (None when no stage uses it)
    candidate: Candidate
    loss_specs: list[LossSpec]
    terms: list[WeightedTerm]
    procedure: tuple[Any, Any] | None  # (family, params)
    teacher_refs: list[str]  # `task` or folders of earlier runs
    train_spec: TrainSpec
    out: Path
    digest: str
    notes: list[str] = field(default_factory=list)
    loaded_teacher: Teacher | None = None  # the task's teacher, when the caller loaded it

    @property
    def recipe(self) -> TaskRecipe:
        return self.task.recipe


def _or(names: list[str]) -> str:
    """The names as "a, b or c"."""
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def default_out(student: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in student)
    return Path("edgedistill-runs") / f"distill-{safe}-{stamp}"


def plan_distill(options: DistillOptions) -> DistillPlan:
    """Validate every input up front. Raises UserInputError naming the flag, file or field."""

    options = _resumed_options(options) if options.resume else _with_defaults(options)
    if options.student is None:
        raise UserInputError("--student: required (a spec as printed by `edgedistill search`)")
    candidate = Candidate.parse(options.student)
    FAMILIES.get(candidate.family)  # an unknown family is refused before the data is read
    if options.epochs is not None and options.epochs < 1:
        raise UserInputError(f"--epochs: must be at least 1, got {options.epochs}")
    fraction = options.labels_fraction
    if fraction is None or not 0 < fraction <= 1:
        raise UserInputError(f"--labels-fraction: must be in (0, 1], got {fraction}")
    if (options.workers or 0) < 0:
        raise UserInputError(f"--workers: must be 0 or more, got {options.workers}")
    out = options.out or default_out(candidate.spec)
    if not options.resume:
        check_new_out(out, resumable=True)
    elif out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: exists and is not a directory")
    options.out = out

    user_source = _user_teacher_source(options.teachers or [])
    task = load_task(
        options.task,
        options.data,
        user_source,
        options.teacher_weights,
        options.workers or 0,
        options.teacher_preprocess,
    )
    candidate = with_task_knobs(candidate, task.data.vocabulary)
    FAMILIES.get(candidate.family).validate(candidate)
    return build_plan(options, task, candidate, user_source)


def build_plan(
    options: DistillOptions,
    task: Task,
    candidate: Candidate,
    user_source: str | None = None,
    teacher: PreparedTeacher | None = None,
    loaded_teacher: Teacher | None = None,
) -> DistillPlan:
    """The plan for `candidate` on a loaded task; `teacher` when the caller has prepared the
    task's teacher already (fit), else it is prepared here when a stage learns from it;
    `loaded_teacher` when the caller has loaded it too."""
    specs, terms, procedure, refs = check_inputs(options, task, user_source)
    if not (_uses_task_teacher(terms, procedure) and TASK in refs):
        teacher = None
    elif teacher is None:
        fed = feed_teacher(task)
        task, teacher = fed.task, fed.teacher
        task.notes.extend(fed.notes)
    check_teacher_layers(teacher, terms)
    train_spec = task.recipe.distill.train
    if options.epochs is not None:
        train_spec = train_spec.model_copy(update={"epochs": options.epochs})
    material = {
        "recipe": task.recipe.model_dump(mode="json"),
        "data": task.data.fingerprint,
        "student": candidate.spec,
        "losses": [s.model_dump(mode="json") for s in specs],
        "teachers": refs,
        "train": train_spec.model_dump(mode="json"),
        "labels_fraction": options.labels_fraction,
        "seed": options.seed,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
    assert options.out is not None
    return DistillPlan(
        options,
        task,
        teacher,
        candidate,
        specs,
        terms,
        procedure,
        refs,
        train_spec,
        options.out,
        digest,
        loaded_teacher=loaded_teacher,
    )


def check_inputs(options: DistillOptions, task: Task, user_source: str | None = None):
    """(loss specs, terms, procedure, teacher refs): the recipe's losses checked against the
    loss registry, with --loss / --layers applied, and the teachers the run names."""
    task_type = task.recipe.task_type
    check_losses(list(task.recipe.distill.losses), _recipe_where(options), task_type)
    specs, terms, procedure = _losses(options, task.recipe)
    if options.losses is not None:
        check_losses(specs, "--loss", task_type)
    refs = _teacher_refs(options.teachers, user_source, task.recipe, terms)
    return specs, terms, procedure, refs


def check_teacher_layers(teacher: PreparedTeacher | None, terms: list[WeightedTerm]) -> None:
    """Feature and attention terms compare the teacher's layers: refused for a teacher that
    gives logits only (ONNX), before any training."""
    if getattr(teacher, "logits_only", False) and any(t.term.pairs for t in terms):
        names = ", ".join(t.name for t in terms if t.term.pairs)
        raise UserInputError(
            f"--loss {names}: the teacher gives logits only (an ONNX teacher has no layers "
            "to compare, so feature and attention losses are unavailable with it); use "
            f"{_or(loss_names('term', needs_teacher=True, compares_layers=False))}, or a "
            "PyTorch teacher (--teacher FILE.py:FN)"
        )


def _recipe_where(options: DistillOptions) -> str:
    """How messages name the recipe: its name or file, or --data when the data alone made it."""
    if options.task is None and options.data is not None:
        return "--data"
    return options.task or "digits"


def _with_defaults(options: DistillOptions) -> DistillOptions:
    values = {k: (DEFAULTS.get(k) if v is None else v) for k, v in asdict(options).items()}
    return DistillOptions(**values)


def _resumed_options(options: DistillOptions) -> DistillOptions:
    """Fill the options of `--resume` from the run's own run.json; refuse changed settings."""
    if options.out is None:
        raise UserInputError("--resume: give --out DIR, the folder of the run to continue")
    run_file = options.out / RUN_FILE
    if not run_file.is_file():
        raise UserInputError(f"--resume: {options.out} holds no {RUN_FILE}; nothing to resume")
    stored = json.loads(run_file.read_text())["options"]
    merged = dict(stored)
    for name in (*LEARNING_FIELDS, "workers", "cache"):
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


def _user_teacher_source(given: list[str]) -> str | None:
    """The one --teacher that names the user's own teacher (FILE.py:FN, module:FN, .onnx)."""

    sources = [ref for ref in given if ref != TASK and not is_earlier_run(ref)]
    if len(sources) > 1:
        raise UserInputError(
            f"--teacher: at most one of your own teachers (FILE.py:FN, module:FN, FILE.onnx) per "
            f"run, got {', '.join(sources)}; add others as folders of earlier distill runs"
        )
    if sources and TASK in given:
        raise UserInputError(
            f"--teacher {sources[0]} replaces the task's teacher; leave out --teacher task"
        )
    return sources[0] if sources else None


def _losses(options: DistillOptions, recipe: TaskRecipe):
    """(loss specs, terms, procedure) from the recipe, or from --loss / --layers."""

    specs = list(recipe.distill.losses)
    if options.losses is not None:
        by_name = {spec.name: spec for spec in specs}
        specs = []
        for name in options.losses:
            if name not in LOSSES:
                raise UserInputError(f"--loss: {LOSSES.unknown_message(name)}")
            specs.append(by_name.get(name) or LossSpec(name=name))
        if len({s.name for s in specs}) != len(specs):
            raise UserInputError(f"--loss: each loss may appear once, got {options.losses}")
    if options.layers is not None:
        specs = [_with_pairs(spec, options.layers) for spec in specs]
    procedures = [s for s in specs if LOSSES.get(s.name).kind == "procedure"]
    if len(procedures) > 1:
        names = ", ".join(s.name for s in procedures)
        raise UserInputError(
            f"--loss: at most one of {', '.join(loss_names('procedure'))}; got {names}"
        )
    procedure = None
    if procedures:
        family = LOSSES.get(procedures[0].name)
        procedure = (family, family.build(loss_params(procedures[0])))
    terms = build_terms(specs)
    if not terms:  # a procedure alone: its stages learn with the task's default term
        specs = [*specs, LossSpec(name=DEFAULT_TERM[recipe.task_type])]
        terms = build_terms(specs)
    if procedure is not None and not any(t.term.needs_teacher for t in terms):
        raise UserInputError(
            f"--loss: {procedure[0].name} trains each stage from the previous one; add a loss "
            f"that learns from a teacher ({', '.join(loss_names('term', needs_teacher=True))})"
        )
    return specs, terms, procedure


def _teacher_refs(given, user_source, recipe: TaskRecipe, terms) -> list[str]:

    refs = [TASK if ref == user_source else ref for ref in (given or [])]
    refs = refs or [TASK, *recipe.distill.teachers]
    for ref in refs:
        check_ref(ref)
    for weighted in terms:
        check = getattr(weighted.term, "check_teachers", None)
        if check is not None:
            try:
                check(len(refs))
            except ValueError as exc:
                raise UserInputError(f"--teacher / loss {weighted.name}: {exc}") from None
    return refs


def _uses_task_teacher(terms, procedure) -> bool:
    if procedure is not None:
        family, params = procedure
        return family.uses_task_teacher(params)
    return any(t.term.needs_teacher for t in terms)


def _with_pairs(spec: LossSpec, layers: list[str]) -> LossSpec:

    if "pairs" not in LOSSES.get(spec.name).params_model.model_fields:
        return spec
    try:
        return LossSpec(name=spec.name, weight=spec.weight, params={**spec.params, "pairs": layers})
    except ValueError as exc:
        raise UserInputError(f"--layers: {exc}") from None
