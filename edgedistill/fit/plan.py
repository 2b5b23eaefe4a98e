"""Planning `fit`: every input read and checked before any training, with the flag, file or
field named in each refusal — profile, budget, precision, formats, task, data, teacher, losses,
lab targets and the run directory (or, with --resume, the interrupted run to continue)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgedistill.budget import parse_budget
from edgedistill.distill.plan import DistillOptions, check_inputs, check_teacher_layers
from edgedistill.errors import UserInputError
from edgedistill.export._registry import EXPORTERS
from edgedistill.export.chain import deploy_formats, plan_chain
from edgedistill.export.context import ExportContext
from edgedistill.fit import run_dir
from edgedistill.fit.calibrate import DEFAULT_SAMPLES
from edgedistill.fit.profile_check import load_device
from edgedistill.fit.search import resolve_precision
from edgedistill.inputs import takes_tokens
from edgedistill.lab.fit_bench import plan_lab_targets
from edgedistill.lab.inventory import DeviceEntry, select_targets
from edgedistill.profiles import DeviceProfile
from edgedistill.quant.scheme import QuantScheme, scheme_for
from edgedistill.records.feeding import TeacherFeeding
from edgedistill.tasks.cascade import DEFAULT_TARGET_DROP
from edgedistill.tasks.recipe import TaskRecipe
from edgedistill.tasks.task import Task, load_task
from edgedistill.teachers import PreparedTeacher, feed_teacher

# Settings a resumed run must keep: they change what is searched, learned or exported.
FULL_INTEGER_ONLY = ("edgetpu",)  # formats whose runtime has no float fallback
LEARNING_FIELDS = (
    "device",
    "budget",
    "task",
    "data",
    "teacher",
    "teacher_weights",
    "teacher_preprocess",
    "precision",
    "formats",
    "epochs",
    "seed",
    "labels_fraction",
    "qat",
    "verify_on_device",
)


@dataclass
class FitOptions:
    device: str
    budget: str
    task: str | None = None  # None: digits, or the defaults for --data
    precision: str | None = None
    formats: list[str] | None = None
    epochs: int | None = None
    seed: int = 0
    out: Path | None = None
    threads: int = 1
    calibration_samples: int = DEFAULT_SAMPLES
    verify_on_device: int = 0  # measure the top K before training
    teacher: str | None = None  # FILE.py:FN, package.module:FN, FILE.onnx or hf:DIR
    teacher_weights: str | None = None
    teacher_preprocess: str | None = None  # a preset or fields; None: detected / the task's
    data: str | None = None  # imagefolder:DIR, npz:FILE, FILE.py:FN, ...; text:, jsonl:, csv:
    workers: int = 0  # loader processes for data decoded lazily
    lab: Path | None = None  # devices.yaml: measure on its --target devices
    target: str | None = None  # NAME[,NAME...] in the lab file
    labels_fraction: float = 1.0  # keep labels on this share of the train split
    resume: bool = False  # continue the interrupted run staged beside --out
    qat: bool = True  # int8: fine-tune quantized (False: post-training calibration only)
    # the cascade's τ keeps its accuracy within this many points of the teacher's (validation)
    cascade_target: float = DEFAULT_TARGET_DROP * 100

    def learning(self) -> dict:
        """The settings a resumed run must keep, as JSON values."""
        values = {name: getattr(self, name) for name in LEARNING_FIELDS}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


@dataclass
class FitPlan:
    options: FitOptions
    profile: DeviceProfile
    budget_ms: float
    task: Task  # recipe and data, loaded and checked
    teacher: PreparedTeacher  # the task's teacher, checked on the data
    feeding: TeacherFeeding  # how the teacher's (and so the run's) preprocessing was chosen
    precision: str
    formats: list[str]
    out: Path
    quant_scheme: QuantScheme | None = None  # int8: the scheme every format shares
    deploy_format: str = "onnx"  # the chain's last format, whether built here or pending
    targets: list[DeviceEntry] = field(default_factory=list)  # lab devices (checked reachable)
    pending: list[str] = field(default_factory=list)  # formats not produced, and why
    notes: list[str] = field(default_factory=list)
    # fit of several devices: students distilled already by another device's run (spec -> its
    # checkpoint folder); the same student is adopted instead of distilled again
    shared_checkpoints: dict[str, Path] = field(default_factory=dict)

    @property
    def recipe(self) -> TaskRecipe:
        return self.task.recipe

    def distill_options(self, student: str, out: Path) -> DistillOptions:
        """The distillation `fit` runs: the recipe's losses and teachers, fit's flags."""
        options = self.options
        return DistillOptions(
            task=options.task,
            data=options.data,
            student=student,
            labels_fraction=options.labels_fraction,
            epochs=options.epochs,
            seed=options.seed,
            workers=options.workers,
            cache=True,
            out=out,
            resume=True,  # the staging folder is fresh unless this is a --resume
        )


def default_out(device: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("edgedistill-runs") / f"fit-{Path(device).stem}-{stamp}"


@dataclass
class FitInputs:
    """What the runs of several devices share: the task and its teacher, checked and fed."""

    task: Task
    teacher: PreparedTeacher
    feeding: TeacherFeeding
    notes: list[str] = field(default_factory=list)


def load_inputs(options: FitOptions) -> FitInputs:
    """The task (recipe, data) and its teacher, read, checked, and fed as it was trained."""
    task = load_task(
        options.task,
        options.data,
        options.teacher,
        options.teacher_weights,
        options.workers,
        options.teacher_preprocess,
    )
    _, terms, _, _ = check_inputs(DistillOptions(task=options.task, data=options.data), task)
    fed = feed_teacher(task)
    check_teacher_layers(fed.teacher, terms)
    notes = [*fed.task.notes, *fed.notes, *fed.teacher.notes]
    return FitInputs(fed.task, fed.teacher, fed.feeding, notes)


def plan_fit(options: FitOptions, inputs: FitInputs | None = None) -> FitPlan:
    """Validate every input up front. Raises UserInputError naming the flag, file or field.
    `inputs`: the task and teacher another device's plan loaded already (fit of several)."""
    budget_ms = parse_budget(options.budget)
    profile = load_device(options.device)
    notes: list[str] = []
    if options.epochs is not None and options.epochs < 1:
        raise UserInputError(f"--epochs: must be at least 1, got {options.epochs}")
    if options.threads < 1:
        raise UserInputError(f"--threads: must be at least 1, got {options.threads}")
    if options.verify_on_device < 0:
        raise UserInputError("--verify-on-device: must be 0 or more")
    if not 0 < options.labels_fraction <= 1:
        raise UserInputError(f"--labels-fraction: must be in (0, 1], got {options.labels_fraction}")
    if options.resume and options.out is None:
        raise UserInputError("--resume: give --out DIR, the run to continue")

    precision = resolve_precision(options.precision, profile)
    requested = (
        ["onnx", *options.formats] if options.formats is not None else deploy_formats(profile)
    )
    chain = plan_chain(
        list(dict.fromkeys(requested)),
        precision,
        ExportContext.for_profile(profile),
        explicit=options.precision is not None or options.formats is not None,
    )
    if options.lab is not None:  # a broken lab file is refused before the data is read
        select_targets(options.lab, options.target, profile.name)
    inputs = inputs or load_inputs(options)
    task, teacher = inputs.task, inputs.teacher
    if precision == "int8" and takes_tokens(task.data.input_shape):
        _refuse_full_integer_formats(chain, options, profile)
    notes.extend(inputs.notes)
    out = options.out or default_out(options.device)
    targets = plan_lab_targets(options.lab, options.target, profile, chain.formats)
    run_dir.check_out(out, options.resume)
    runtimes = [EXPORTERS.get(name).runs_on for name in [*chain.formats, *_pending(chain)]]
    return FitPlan(
        options=options,
        profile=profile,
        budget_ms=budget_ms,
        task=task,
        teacher=teacher,
        feeding=inputs.feeding,
        precision=precision,
        formats=chain.formats,
        out=out,
        quant_scheme=scheme_for(runtimes) if precision == "int8" else None,
        deploy_format=chain.deploy_format,
        targets=targets,
        pending=list(chain.pending),
        notes=notes,
    )


def _refuse_full_integer_formats(chain, options: FitOptions, profile) -> None:
    """A text student's int8 keeps LayerNorm, softmax and GELU in float (quant/encoder_plan.py):
    formats that run full-integer models only cannot take it."""
    formats = [*chain.formats, *_pending(chain)]
    refused = [name for name in formats if name in FULL_INTEGER_ONLY]
    if not refused:
        return
    origin = "--formats" if options.formats is not None else f"profile {profile.name}"
    raise UserInputError(
        f"{origin}: {', '.join(refused)} runs full-integer models only, and an int8 text student "
        "keeps its embeddings, LayerNorm, softmax and GELU in float; give --formats without "
        f"{', '.join(refused)}, --precision fp32, or another --device"
    )


def _pending(chain) -> list[str]:
    """Formats of the chain that wait for a device: their runtimes constrain the scheme too."""
    names = [line.split(" ", 1)[0] for line in chain.pending]
    return [name for name in names if name in EXPORTERS]
