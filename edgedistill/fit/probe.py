"""Export a candidate with random weights (weights do not change latency) to time it."""

from __future__ import annotations

from pathlib import Path

from edgedistill.export import EXPORTERS
from edgedistill.latency.costs import ModelCost
from edgedistill.students import Candidate, build_student
from edgedistill.students.select import candidate_cost


def export_candidate(
    candidate: Candidate, input_shape: tuple[int, int, int], num_classes: int, path: Path
) -> ModelCost:
    """Write the candidate's ONNX to `path`; return its cost (for the prediction)."""
    import torch

    module = build_student(candidate, input_shape, num_classes)
    EXPORTERS.get("onnx").export(module, torch.zeros((1, *input_shape)), path, "fp32")
    return candidate_cost(candidate.spec, tuple(input_shape), num_classes, "fp32")
