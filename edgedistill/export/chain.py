"""Plan and run an export chain: each format in order, each artifact validated where it can run.

Planning happens before any training: unknown formats, precisions no format writes, missing
extras and impossible targets are refused; formats that can only be built on the device
(a TensorRT engine without a GPU here, an Edge TPU compile without the compiler) go to
`pending` with the command that builds them. Running the chain exports each format (a format
built from another gets that artifact through the context), validates it against the PyTorch
student, and refuses to hand over an artifact that misses its precision's tolerance.

An int8 chain is handed the fake-quantized student (quant.prepare, calibrated): every format
exports it with its learned scales and every artifact is compared with it, not with the float
student. A format that writes only fp32 / fp16 waits in `pending` in an int8 chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import EdgeDistillError, GoalNotMetError, UserInputError
from edgedistill.export._registry import EXPORTERS, artifact_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.preflight import explain_failure
from edgedistill.export.validate import Reference, judge, record, tolerance_for
from edgedistill.hashing import sha256_file
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.quant.fake import current_mode, is_quantized

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.export.validate import Reference
    from edgedistill.profiles import DeviceProfile
    from edgedistill.records.artifact import Artifact
    from edgedistill.tasks.data import TaskData


@dataclass(frozen=True)
class ChainStep:
    format: str
    precision: str


@dataclass
class ChainPlan:
    steps: list[ChainStep]  # built on this host, in order
    pending: list[str] = field(default_factory=list)  # "format precision: why, and how"
    deploy_format: str = "onnx"  # the last format of the chain, built here or pending

    @property
    def formats(self) -> list[str]:
        return [step.format for step in self.steps]


def order_formats(formats: list[str], flag: str = "--formats") -> list[str]:
    """Every format after the one it is built from (added when missing), else as given."""

    ordered: list[str] = []

    def place(name: str, wanted_by: str | None) -> None:
        if name not in EXPORTERS:
            owner = f" (needed by {wanted_by})" if wanted_by else ""
            raise UserInputError(f"{flag}: {EXPORTERS.unknown_message(name)}{owner}")
        if name in ordered:
            return
        consumes = EXPORTERS.get(name).consumes
        if consumes:
            place(consumes, name)
        ordered.append(name)

    for name in formats:
        place(name, None)
    return ordered


def deploy_formats(profile: DeviceProfile) -> list[str]:
    """The profile's deploy chain, plus any compiler for a runtime the profile lists that
    builds from a format of that chain (the Edge TPU compiler after tflite, on coral-edgetpu)."""

    formats = list(profile.deploy.formats)
    for name in EXPORTERS:
        exporter = EXPORTERS.get(name)
        runtime = exporter.compiles_for_runtime
        joins = runtime in profile.runtimes and exporter.consumes in formats
        if runtime and joins and name not in formats:
            formats.append(name)
    return formats


def plan_chain(
    formats: list[str],
    precision: str,
    context: ExportContext,
    explicit: bool = True,
    precision_flag: str = "--precision",
) -> ChainPlan:
    """Refuse what cannot work; split the rest into steps built here and pending ones.

    `explicit`: the precision was asked for, so a format that cannot write it is refused; when
    it came from a profile default, such a format is left pending instead.
    """

    ordered = order_formats(formats)
    plan = ChainPlan(steps=[], deploy_format=ordered[-1])
    waiting: set[str] = set()
    carried = False
    for name in ordered:
        exporter = EXPORTERS.get(name)
        step_precision = artifact_precision(exporter, precision)
        if step_precision is None:
            writes = ", ".join(exporter.precisions)
            if explicit:
                raise UserInputError(
                    f"{precision_flag} {precision}: the {name} exporter writes {writes} only; "
                    f"drop {name} from --formats or choose one of those"
                )
            plan.pending.append(f"{name} {writes}: needs {writes}; this run produces {precision}")
            waiting.add(name)
            continue
        carried = carried or step_precision == precision
        if exporter.consumes in waiting:
            plan.pending.append(
                f"{name} {step_precision}: waits for the {exporter.consumes} artifact it is "
                "built from"
            )
            waiting.add(name)
            continue
        reason = exporter.check(step_precision, context)
        if reason:
            plan.pending.append(f"{name} {step_precision}: {reason}")
            waiting.add(name)
        else:
            plan.steps.append(ChainStep(name, step_precision))
    if not carried:
        writers = [n for n in EXPORTERS if precision in EXPORTERS.get(n).precisions]
        raise UserInputError(
            f"{precision_flag} {precision}: none of the formats {', '.join(ordered)} writes "
            f"{precision} (formats that do: {', '.join(writers) or 'none yet'}); add one "
            "with --formats"
        )
    return plan


def export_chain(
    formats: list[str],
    precision: str,
    student: nn.Module,
    example: torch.Tensor,
    out_dir: Path,
    data: TaskData | None,
    progress: ProgressFn = no_progress,
    context: ExportContext | None = None,
    reference: Reference | None = None,
    pending: list[str] | None = None,
) -> list[Artifact]:
    """Export `student` to every format (planned by plan_chain), validating each artifact.

    The comparison sample is the first samples of `data.val` and accuracy is scored on
    `data.test`; without data, seeded random inputs are compared and accuracy is not scored.
    A `pending` line (from plan_chain) is also noted on the artifact its format is built
    from, so the bundle says how the device builds the rest (the engine from the ONNX).
    """

    context = context or ExportContext()
    check_student(student, precision)
    student = student.eval()
    if reference is None:
        reference = (
            Reference.from_data(student, data.val, data.test)
            if data is not None
            else Reference.from_random(student, tuple(example.shape[1:]))
        )
    upstream: dict[str, Artifact] = {}
    artifacts = []
    for index, name in enumerate(formats):
        progress("export", index, len(formats), name)
        exporter = EXPORTERS.get(name)
        step_precision = artifact_precision(exporter, precision) or precision
        path = out_dir / f"model.{step_precision}{exporter.suffix}"
        step_context = replace(context, upstream=dict(upstream))
        try:
            artifact = exporter.export(student, example, path, step_precision, step_context)
        except EdgeDistillError:
            raise
        except Exception as exc:
            raise explain_failure(exc, name, student, example) from None
        validation = exporter.validate(artifact, reference)
        tolerance = tolerance_for(step_precision, reference)
        problems = judge(validation, tolerance, reference)
        if problems:
            raise GoalNotMetError(
                f"the {name} {step_precision} export does not match the PyTorch student "
                f"({'; '.join(problems)}; checked with {validation.runtime}); refusing to "
                "hand over an artifact that computes something else"
            )
        record(artifact, validation, tolerance)
        artifact.sha256 = sha256_file(path)
        artifact.bytes = path.stat().st_size
        artifact.notes.extend(line for line in pending or [] if _consumed_by(line) == name)
        upstream[name] = artifact
        artifacts.append(artifact)
    progress("export", len(formats), len(formats), "done")
    return artifacts


def check_student(student: nn.Module, precision: str) -> None:
    """An int8 chain takes the prepared, calibrated student; the others the float one."""
    quantized = is_quantized(student)
    if precision == "int8" and not quantized:
        raise ValueError("an int8 chain exports the prepared student (quant.prepare), not fp32")
    if precision == "int8" and current_mode(student) == "observe":
        raise ValueError("the prepared student is not calibrated yet (quant.prepare.calibrate)")
    if precision != "int8" and quantized:
        raise ValueError(f"a {precision} chain exports the float student, not a quantized one")


def _consumed_by(pending_line: str) -> str | None:
    """The format a pending line's format is built from ("tensorrt fp16: ..." -> "onnx")."""

    name = pending_line.split(" ", 1)[0]
    return EXPORTERS.get(name).consumes if name in EXPORTERS else None
