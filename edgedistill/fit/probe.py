"""Export a candidate with random weights (weights do not change latency) to time it, in the form
the calibration measures (latency.calibration.PROBE_FORMAT): fp32 ONNX, or at int8 the QDQ ONNX
that `fit` deploys (BN folded, per-channel int8 weights, activation ranges from a seeded random
batch: the ranges change the scales, not which kernels run)."""

from __future__ import annotations

from pathlib import Path

from edgedistill.export import EXPORTERS
from edgedistill.export._registry import artifact_precision
from edgedistill.latency.calibration import PROBE_FORMAT
from edgedistill.latency.costs import ModelCost
from edgedistill.quant.prepare import calibrate, prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import Candidate, build_student
from edgedistill.students.select import candidate_cost

CALIBRATION_BATCH = 4  # random inputs that set the probe's activation ranges
SEED = 0


def probe_precision(precision: str) -> str:
    """The precision of the probe artifact a `precision` run is timed with: what the probe
    format writes (fp16 has no fp16 ONNX here: the ONNX hub artifact stays fp32)."""
    written = artifact_precision(EXPORTERS.get(PROBE_FORMAT), precision)
    return written or "fp32"


def export_candidate(
    candidate: Candidate,
    input_shape: tuple[int, int, int],
    num_classes: int,
    path: Path,
    precision: str = "fp32",
    scheme: QuantScheme | None = None,
) -> ModelCost:
    """Write the candidate's probe artifact to `path` at probe_precision(precision); return its
    cost (for the prediction). `scheme`: the int8 scheme (default: asymmetric activations,
    what onnxruntime runs fastest)."""
    import torch

    written = probe_precision(precision)
    module = build_student(candidate, input_shape, num_classes)
    example = torch.zeros((1, *input_shape))
    if written == "int8":
        module = prepare(module, scheme or QuantScheme())
        generator = torch.Generator().manual_seed(SEED)
        batch = torch.randn((CALIBRATION_BATCH, *input_shape), generator=generator)
        calibrate(module, [batch])
    EXPORTERS.get(PROBE_FORMAT).export(module, example, path, written)
    return candidate_cost(candidate.spec, tuple(input_shape), num_classes, "fp32")
