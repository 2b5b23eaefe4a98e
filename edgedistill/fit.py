"""`fit`: profile -> search -> teacher -> distill -> export -> bench -> bundle, in one run.

Every input is checked before any training starts, and the run directory is assembled under a
temporary name and renamed into place only when the whole run has succeeded.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgedistill import __version__, atomic
from edgedistill.budget import parse_budget
from edgedistill.errors import UserInputError
from edgedistill.latency.calibrate import DEFAULT_SAMPLES
from edgedistill.profiles import DeviceProfile, load_profile
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.summary import RunSummary
from edgedistill.tasks.recipe import TaskRecipe
from edgedistill.tasks.task import Task, load_task

log = logging.getLogger(__name__)
SUPPORTED_PRECISIONS = ("fp32", "fp16")  # int8 arrives with quantization-aware distillation


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
    teacher: str | None = None  # FILE.py:FN, package.module:FN or FILE.onnx
    teacher_weights: str | None = None
    data: str | None = None  # imagefolder:DIR, npz:FILE, FILE.py:FN, package.module:FN
    workers: int = 0  # loader processes for data decoded lazily
    lab: Path | None = None  # devices.yaml: measure on its --target devices
    target: str | None = None  # NAME[,NAME...] in the lab file


@dataclass
class FitPlan:
    profile: DeviceProfile
    budget_ms: float
    recipe: TaskRecipe
    precision: str
    formats: list[str]
    out: Path
    staging: Path
    options: FitOptions
    notes: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    task: Task | None = None  # the data loaded and the teacher checked, in plan_fit
    deploy_format: str = "onnx"  # the chain's last format, whether built here or pending
    targets: list = field(default_factory=list)  # lab devices to measure on (checked reachable)


def default_out(device: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("edgedistill-runs") / f"fit-{Path(device).stem}-{stamp}"


def _prepare_out(out: Path) -> Path:
    """Refuse an unusable --out now; return an empty staging directory beside it."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise UserInputError(f"--out {out}: directory exists and is not empty; choose a new one")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise UserInputError(f"--out {out}: cannot write there ({exc.strerror})") from None


def plan_fit(options: FitOptions) -> FitPlan:
    """Validate every input up front. Raises UserInputError naming the flag, file or field."""
    from edgedistill.export import ExportContext
    from edgedistill.export.chain import deploy_formats, plan_chain
    from edgedistill.lab.fit_bench import plan_lab_targets

    budget_ms = parse_budget(options.budget)
    profile = load_profile(options.device)
    notes: list[str] = []
    pending: list[str] = []
    if options.epochs is not None and options.epochs < 1:
        raise UserInputError(f"--epochs: must be at least 1, got {options.epochs}")
    if options.threads < 1:
        raise UserInputError(f"--threads: must be at least 1, got {options.threads}")
    if options.verify_on_device < 0:
        raise UserInputError("--verify-on-device: must be 0 or more")

    precision = options.precision or profile.deploy.precision
    if precision not in SUPPORTED_PRECISIONS:
        if options.precision is not None:
            raise UserInputError(
                f"--precision {precision}: this version exports "
                f"{', '.join(SUPPORTED_PRECISIONS)} (int8 arrives with quantization-aware "
                "distillation, not implemented yet)"
            )
        notes.append(
            f"{profile.name} deploys {precision}; this version produces fp32 "
            "(quantization-aware distillation not implemented yet)"
        )
        precision = "fp32"

    requested = (
        ["onnx", *options.formats] if options.formats is not None else deploy_formats(profile)
    )
    chain = plan_chain(
        list(dict.fromkeys(requested)),
        precision,
        ExportContext.for_profile(profile),
        explicit=options.precision is not None or options.formats is not None,
    )
    formats = chain.formats
    pending.extend(chain.pending)
    task = load_task(
        options.task, options.data, options.teacher, options.teacher_weights, options.workers
    )
    recipe = task.recipe
    notes.extend(task.notes)
    targets = plan_lab_targets(options.lab, options.target, profile, formats)
    staging = _prepare_out(options.out or default_out(options.device))
    return FitPlan(
        profile,
        budget_ms,
        recipe,
        precision,
        formats,
        options.out or default_out(options.device),
        staging,
        options,
        notes,
        pending,
        task,
        deploy_format=chain.deploy_format,
        targets=targets,
    )


def run_fit(plan: FitPlan, progress: ProgressFn = no_progress) -> RunSummary:
    """Run every stage; on success the run directory appears at plan.out, else nothing does."""
    try:
        summary = _run_stages(plan, progress)
        if plan.out.exists():
            plan.out.rmdir()  # checked empty in plan_fit
        plan.staging.rename(plan.out)
    except BaseException:
        shutil.rmtree(plan.staging, ignore_errors=True)
        raise
    return summary


def _run_stages(plan: FitPlan, progress: ProgressFn) -> RunSummary:
    import torch

    from edgedistill.bundle.writer import write_bundle
    from edgedistill.distill.checkpoint import save_student
    from edgedistill.distill.student import distill_student
    from edgedistill.export import ExportContext
    from edgedistill.export.chain import export_chain
    from edgedistill.export.preflight import preflight
    from edgedistill.lab.fit_bench import bench_stage, measured_fit
    from edgedistill.lab.host_bench import BenchProtocol
    from edgedistill.students import build_student
    from edgedistill.tasks.teacher_sources import teacher_cost, teacher_onnx

    options, profile, recipe = plan.options, plan.profile, plan.recipe
    assert plan.task is not None and plan.task.teacher is not None  # loaded in plan_fit
    stages: dict[str, float] = {}
    num_classes = len(recipe.labels)

    started = time.perf_counter()
    data = plan.task.data
    input_shape = data.input_shape
    chosen, margin = _search(plan, input_shape, num_classes, progress)
    example = torch.zeros((1, *input_shape))
    export_context = ExportContext.for_profile(profile, recipe.preprocessing, recipe.labels)
    untrained = build_student(chosen.candidate, input_shape, num_classes)
    preflight(plan.formats, plan.precision, untrained, example, export_context, progress)
    stages["search"] = time.perf_counter() - started

    started = time.perf_counter()
    teacher = plan.task.teacher.load(seed=options.seed, progress=progress)
    stages["teacher"] = time.perf_counter() - started

    started = time.perf_counter()
    distilled = distill_student(
        recipe, data, teacher.model, chosen.candidate, options.epochs, options.seed, progress
    )
    stages["distill"] = time.perf_counter() - started

    started = time.perf_counter()
    bundle = plan.staging / "bundle"
    artifacts = export_chain(
        plan.formats,
        plan.precision,
        distilled.model,
        example,
        bundle,
        data,
        progress,
        context=export_context,
        pending=plan.pending,
    )
    save_student(plan.staging / "checkpoint", distilled, recipe.name, input_shape, num_classes)
    stages["export"] = time.perf_counter() - started

    started = time.perf_counter()
    protocol = BenchProtocol(threads=options.threads)
    with tempfile.TemporaryDirectory(prefix="edgedistill-teacher-") as scratch:
        student_latency, teacher_latency = bench_stage(
            profile,
            plan.targets,
            artifacts,
            lambda: teacher_onnx(teacher, example, Path(scratch)),
            protocol,
            progress,
            plan.notes,
        )
    stages["bench"] = time.perf_counter() - started

    # The artifact of the chain's last format is the deployed one; when that format waits for
    # a device (a TensorRT engine), no deployed accuracy is claimed.
    deployed = artifacts[-1] if artifacts[-1].format == plan.deploy_format else None
    teacher_params, teacher_macs = teacher_cost(teacher, input_shape)
    if student_latency:
        fits, basis = measured_fit(student_latency, plan.budget_ms)
    else:
        fits, basis = chosen.predicted_ms <= plan.budget_ms, "predicted"
    for artifact in artifacts:
        artifact.path = Path(artifact.path).relative_to(plan.staging).as_posix()
    summary = RunSummary(
        edgedistill_version=__version__,
        device=profile.name,
        budget_ms=plan.budget_ms,
        fits_budget=bool(fits),
        fits_budget_basis=basis,
        task={
            "name": recipe.name,
            "input_name": recipe.input.name,
            "input_shape": [1, *input_shape],
            "labels": recipe.labels,
            "preprocessing": recipe.preprocessing.model_dump(mode="json"),
            "split_sizes": {
                "train": len(data.train),
                "val": len(data.val),
                "test": len(data.test),
            },
            "data_source": data.source,
            "split": data.split,
        },
        teacher={
            "form": teacher.form,
            "source": teacher.source or None,
            "params": teacher_params,
            "macs": teacher_macs,
            "accuracy": teacher.test_accuracy,
            "latency_ms": teacher_latency,
            "cache_path": teacher.cache_path,
            "trained_now": teacher.trained_now,
        },
        student={
            "spec": chosen.candidate.spec,
            "family": chosen.candidate.family,
            "arch": dict(chosen.candidate.knobs),
            "params": chosen.params,
            "macs": chosen.macs,
            "precision": plan.precision,
            "accuracy_fp32": distilled.test_accuracy,
            "accuracy": deployed.accuracy if deployed else None,
            "epochs_run": distilled.train.epochs_run,
            "best_epoch": distilled.train.best_epoch,
        },
        retention=(deployed.accuracy / teacher.test_accuracy)
        if deployed and deployed.accuracy is not None and teacher.test_accuracy > 0
        else None,
        latency_ms={
            **student_latency,
            "predicted": chosen.predicted_ms,
            "calibrated": chosen.calibrated,
            "margin": margin,
        },
        artifacts=artifacts,
        pending=plan.pending,
        notes=plan.notes,
        seed=options.seed,
        stages_s={k: round(v, 3) for k, v in stages.items()},
    )
    write_bundle(bundle, summary)
    atomic.write_json(plan.staging / "summary.json", summary.model_dump(mode="json"))
    return summary


def _search(plan: FitPlan, input_shape, num_classes: int, progress: ProgressFn):
    """Score the space on the device (calibrating the host on first use), verify, pick."""
    from edgedistill.lab.host_bench import BenchProtocol
    from edgedistill.lab.measure import can_measure, measure_artifact
    from edgedistill.students.search import latency_model, run_search

    profile, options = plan.profile, plan.options
    model = latency_model(
        profile,
        plan.precision,
        input_shape,
        num_classes,
        options.threads,
        options.calibration_samples,
        progress,
    )
    measure_p90 = None
    if options.verify_on_device and can_measure(profile):
        protocol = BenchProtocol(threads=options.threads)

        def measure_p90(path: Path) -> float | None:
            result = measure_artifact(profile, path, protocol)
            return None if result is None else result.p90

    elif options.verify_on_device:
        plan.notes.append(f"--verify-on-device skipped: {profile.name} cannot be measured here")
    result = run_search(
        profile,
        model,
        input_shape,
        num_classes,
        plan.budget_ms,
        plan.staging,
        options.verify_on_device,
        measure_p90,
        progress,
    )
    for entry in result.verified:
        plan.notes.append(
            f"verified before training: {entry['spec']} measured p90 {entry['p90_ms']:.4f} ms "
            f"(predicted {entry['predicted_ms']:.4f} ms)"
        )
    return result.chosen, result.margin
