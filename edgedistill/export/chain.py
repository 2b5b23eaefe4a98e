"""Run a profile's export chain: each format in order, each artifact validated where it can run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import GoalNotMetError
from edgedistill.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.export.artifact import Artifact
    from edgedistill.tasks.data import TaskData


def export_chain(
    formats: list[str],
    precision: str,
    student: nn.Module,
    example: torch.Tensor,
    out_dir: Path,
    data: TaskData,
    progress: ProgressFn = no_progress,
) -> list[Artifact]:
    """Export `student` to every format; record validation figures on each artifact."""
    from edgedistill.bundle.manifest import sha256_file
    from edgedistill.export import EXPORTERS
    from edgedistill.export.validate import FP32_TOLERANCE, validate_onnx

    artifacts = []
    for index, name in enumerate(formats):
        progress("export", index, len(formats), name)
        exporter = EXPORTERS.get(name)
        path = out_dir / f"model.{precision}{exporter.suffix}"
        artifact = exporter.export(student, example, path, precision)
        if name == "onnx":
            check = validate_onnx(path, student, data.val, data.test)
            artifact.max_abs_diff = check.max_abs_diff
            artifact.argmax_agreement = check.argmax_agreement
            artifact.accuracy = check.accuracy
            artifact.validated_with = check.runtime
            if precision == "fp32" and check.max_abs_diff > FP32_TOLERANCE * 100:
                raise GoalNotMetError(
                    f"the ONNX export differs from the PyTorch student by {check.max_abs_diff:.3g} "
                    "(max abs logit); refusing to bundle an artifact that computes something else"
                )
        artifact.sha256 = sha256_file(path)
        artifacts.append(artifact)
    progress("export", len(formats), len(formats), "done")
    return artifacts
