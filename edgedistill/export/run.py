"""`export` as a library call: plan (every refusal up front), then export, validate, write.

The output directory is assembled under a temporary name and renamed into place only when every
artifact has been exported and validated, so a failed export leaves nothing half-written.

int8 comes only from a quantized checkpoint (`fit --precision int8`): its scales were learned
on the task's data, which `export` does not have. Such a checkpoint exports at int8 only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import __version__, atomic
from edgedistill.errors import UserInputError
from edgedistill.export.chain import deploy_formats, export_chain, plan_chain
from edgedistill.export.context import ExportContext
from edgedistill.export.source import load_source, source_scheme
from edgedistill.export.validate import Reference
from edgedistill.paths import check_new_out
from edgedistill.profiles import load_profile
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.export import ExportResult
from edgedistill.tasks.data import load_task_data
from edgedistill.tasks.recipe import BUILTIN_TASKS
from edgedistill.tasks.task import load_recipe

if TYPE_CHECKING:
    from edgedistill.export.chain import ChainPlan
    from edgedistill.export.context import ExportContext
    from edgedistill.export.source import ExportSource
    from edgedistill.profiles import DeviceProfile
    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")
INT8_SOURCE = "a quantized checkpoint from `edgedistill fit --precision int8`"
EXPORT_DOCUMENT = "export.json"


@dataclass
class ExportRequest:
    checkpoint: str
    out: Path
    formats: list[str] | None = None
    precision: str | None = None
    device: str | None = None
    task: str | None = None
    weights: Path | None = None
    input_shape: str | None = None
    min_deployment_target: str | None = None


@dataclass
class ExportPlan:
    request: ExportRequest
    precision: str
    chain: ChainPlan
    context: ExportContext
    source: ExportSource
    recipe: TaskRecipe | None
    data: TaskData | None
    notes: list[str] = field(default_factory=list)


def plan_export(request: ExportRequest) -> ExportPlan:
    """Check every input; raises UserInputError naming the flag, file or field."""

    notes: list[str] = []
    profile = load_profile(request.device) if request.device else None
    quantized = source_scheme(request.checkpoint) is not None
    precision = _precision(request, profile, quantized, notes)
    if request.formats is not None:
        formats = ["onnx", *request.formats]
    elif profile is not None:
        formats = deploy_formats(profile)
    else:
        raise UserInputError("--formats: name the formats (see `export --list`), or give --device")
    context = ExportContext.for_profile(profile) if profile else ExportContext()
    if request.min_deployment_target is not None:
        context = replace(
            context,
            min_deployment_target=request.min_deployment_target,
            min_deployment_target_origin="--min-deployment-target",
        )
    explicit = request.precision is not None or request.formats is not None
    flag = "CHECKPOINT (quantized)" if quantized and request.precision is None else "--precision"
    chain = plan_chain(
        list(dict.fromkeys(formats)), precision, context, explicit=explicit, precision_flag=flag
    )
    check_new_out(request.out)
    source = load_source(request.checkpoint, request.weights, request.input_shape)
    recipe, data = _task_data(request.task, source, notes)
    if recipe is not None:
        context = replace(context, preprocessing=recipe.preprocessing, labels=tuple(recipe.labels))
    return ExportPlan(request, precision, chain, context, source, recipe, data, notes)


def run_export(plan: ExportPlan, progress: ProgressFn = no_progress) -> ExportResult:
    """Export and validate every planned format into plan.request.out; returns export.json."""
    import torch

    source = plan.source
    example = torch.zeros((1, *source.input_shape))
    reference = (
        Reference.from_data(source.module, plan.data.val, plan.data.test)
        if plan.data is not None
        else Reference.from_random(source.module, source.input_shape)
    )
    with atomic.staged_directory(plan.request.out) as staging:
        artifacts = export_chain(
            plan.chain.formats,
            plan.precision,
            source.module,
            example,
            staging,
            plan.data,
            progress,
            context=plan.context,
            reference=reference,
            pending=plan.chain.pending,
        )
        for artifact in artifacts:
            artifact.path = Path(artifact.path).relative_to(staging).as_posix()
        document = ExportResult(
            edgedistill_version=__version__,
            source=source.description,
            device=plan.context.device,
            precision=plan.precision,
            task=plan.recipe.name if plan.recipe else None,
            input_shape=[1, *source.input_shape],
            validation_sample=reference.sample_origin,
            student_accuracy=reference.student_accuracy,
            artifacts=artifacts,
            pending=plan.chain.pending,
            notes=plan.notes,
        )
        atomic.write_json(staging / EXPORT_DOCUMENT, document.model_dump(mode="json"))
    return document


def _precision(
    request: ExportRequest, profile: DeviceProfile | None, quantized: bool, notes: list[str]
) -> str:
    """--precision, else int8 for a quantized checkpoint, else the profile's, else fp32."""
    asked = request.precision
    device, deploys = (profile.name, profile.deploy.precision) if profile else (None, None)
    if asked is not None and asked not in PRECISIONS:
        raise UserInputError(f"--precision {asked}: choose one of {', '.join(PRECISIONS)}")
    if quantized:
        if asked not in (None, "int8"):
            raise UserInputError(
                f"--precision {asked}: CHECKPOINT {request.checkpoint} is quantized (int8); "
                "it exports at int8 only (leave out --precision); export the fp32 checkpoint "
                f"it was fine-tuned from for {asked}"
            )
        if asked is None and deploys not in (None, "int8"):
            notes.append(f"{device} deploys {deploys}; the checkpoint is quantized: int8")
        return "int8"
    precision = asked or deploys or "fp32"
    if precision != "int8":
        return precision
    if asked is not None:
        raise UserInputError(
            f"--precision int8: CHECKPOINT {request.checkpoint} is not quantized; int8 needs "
            f"calibration data and {INT8_SOURCE} (it calibrates the student on the task's "
            "data and fine-tunes it at int8); export that run's checkpoint"
        )
    notes.append(
        f"{device} deploys int8; this checkpoint is fp32, so the export is fp32 "
        f"(int8 needs {INT8_SOURCE})"
    )
    return "fp32"


def _task_data(task: str | None, source: ExportSource, notes: list[str]):
    """The recipe and data that validate the artifacts, or (None, None) with a note."""

    name = task or (source.task if source.task in BUILTIN_TASKS else None)
    if name is None:
        notes.append(
            "no task data: artifacts compared with the model on seeded random inputs and not "
            "scored; pass --task (the recipe it was trained on) to score them on its test split"
        )
        return None, None
    recipe = load_recipe(name)
    data = load_task_data(recipe)
    if tuple(data.input_shape) != tuple(source.input_shape):
        raise UserInputError(
            f"--task {name}: its inputs are {list(data.input_shape)}, the model takes "
            f"{list(source.input_shape)}"
        )
    classes = _output_width(source)
    if classes != len(recipe.labels):
        raise UserInputError(
            f"--task {name}: it has {len(recipe.labels)} labels, the model {classes} outputs"
        )
    return recipe, data


def _output_width(source: ExportSource) -> int:
    import torch

    with torch.no_grad():
        return int(source.module(torch.zeros((1, *source.input_shape))).shape[1])
