"""The measure stage of `fit`: the deployed student and the teacher, timed with one protocol on
this host or on the lab targets."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.export import EXPORTERS
from edgedistill.fit.plan import FitPlan
from edgedistill.lab.fit_bench import bench_stage
from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.artifact import Artifact
from edgedistill.records.measurements import MeasuredLatency, Measurements
from edgedistill.teachers import Teacher

if TYPE_CHECKING:
    import torch


def teacher_onnx(teacher: Teacher, example: torch.Tensor, folder: Path) -> Path:
    """An ONNX file of the teacher to time: the user's own file, or an export of the module."""
    if teacher.onnx_path is not None:
        return Path(teacher.onnx_path)
    exporter = EXPORTERS.get("onnx")
    return Path(exporter.export(teacher.model, example, folder / "teacher.onnx", "fp32").path)


def measure_stage(
    plan: FitPlan,
    artifacts: list[Artifact],
    teacher: Teacher,
    example: torch.Tensor,
    progress: ProgressFn = no_progress,
) -> Measurements:
    protocol = BenchProtocol(threads=plan.options.threads)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgedistill-teacher-") as scratch:
        student, teacher_latency = bench_stage(
            plan.profile,
            plan.targets,
            artifacts,
            lambda: teacher_onnx(teacher, example, Path(scratch)),
            protocol,
            progress,
            notes,
            plan.deploy_format,
            plan.precision,
        )
    return Measurements(
        student=MeasuredLatency.model_validate(student),
        teacher=MeasuredLatency.model_validate(teacher_latency),
        notes=notes,
    )
