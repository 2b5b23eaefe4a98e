"""Export a candidate with random weights (weights do not change latency) to time it, in the form
the device runs: the format it ships where a probe can be made in it (fp32 / int8 ONNX, TFLite;
a TensorRT engine is built on the device from the probe's ONNX), else the hub ONNX. At int8 the
probe is quantized like the shipped student (BN folded, per-channel int8 weights, activation
ranges from a seeded random batch: the ranges change the scales, not which kernels run).

Probes are cached by what makes them (candidate, input, classes, format, precision, scheme), so
calibrating a second board of the same kind, or verifying after calibrating, exports nothing."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from edgedistill.export import EXPORTERS
from edgedistill.export._registry import artifact_precision
from edgedistill.inputs import example_input, random_input
from edgedistill.lab.timing import TimedArtifact
from edgedistill.latency.calibration import PROBE_FORMAT
from edgedistill.latency.costs import ModelCost
from edgedistill.paths import cache_dir
from edgedistill.profiles import DeviceProfile
from edgedistill.quant.prepare import calibrate, prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import Candidate, build_student
from edgedistill.students.select import candidate_cost

CALIBRATION_BATCH = 4  # random inputs that set the probe's activation ranges
SEED = 0
PROBE_VERSION = 1  # bump when probes are made differently: cached ones are then remade
WRITTEN_FOR = {"onnx": "onnx", "tflite": "tflite", "tensorrt": "onnx"}  # timed -> written


def timed_format(profile: DeviceProfile) -> str:
    """The format calibration and verification time on `profile`: the one it ships where a
    probe can be made in it, else the hub format (an Edge TPU model, a Core ML package)."""
    shipped = profile.deploy.formats[-1]
    return shipped if shipped in WRITTEN_FOR else PROBE_FORMAT


def runtime_of(fmt: str) -> str:
    """The runtime that runs `fmt` artifacts, as a profile's `runtimes` names it."""
    return EXPORTERS.get(fmt).runs_on


def probe_precision(precision: str, fmt: str = PROBE_FORMAT) -> str:
    """The precision of the probe a `precision` run is timed with in `fmt`: what that format
    writes (fp16 has no fp16 ONNX here: the ONNX hub artifact stays fp32)."""
    written = artifact_precision(EXPORTERS.get(fmt), precision)
    return written or "fp32"


def export_candidate(
    candidate: Candidate,
    input_shape: tuple[int, int, int],
    num_classes: int,
    path: Path,
    precision: str = "fp32",
    scheme: QuantScheme | None = None,
    fmt: str = PROBE_FORMAT,
) -> ModelCost:
    """Write the candidate's probe for timing in `fmt` to `path` (the file written: ONNX for a
    TensorRT engine); return its cost (for the prediction). `scheme`: the int8 scheme (default:
    asymmetric activations, what onnxruntime runs fastest)."""
    import torch

    written_format = WRITTEN_FOR[fmt]
    written = probe_precision(precision, written_format)
    module = build_student(candidate, input_shape, num_classes)
    example = example_input(input_shape)
    if written == "int8":
        module = prepare(module, scheme or QuantScheme())
        generator = torch.Generator().manual_seed(SEED)
        batch = random_input(input_shape, CALIBRATION_BATCH, generator, candidate.knobs.get("v"))
        calibrate(module, [batch])
    EXPORTERS.get(written_format).export(module, example, path, written)
    return candidate_cost(candidate.spec, tuple(input_shape), num_classes, "fp32")


def probe_artifact(
    candidate: Candidate,
    input_shape: tuple[int, int, int],
    num_classes: int,
    precision: str,
    scheme: QuantScheme | None,
    fmt: str,
) -> TimedArtifact:
    """The candidate's probe for timing in `fmt` at `precision`, from the probe cache (made
    once). A TensorRT probe is its ONNX file: the device builds the engine."""
    written_format = WRITTEN_FOR[fmt]
    written = probe_precision(precision, written_format)
    key = {
        "version": PROBE_VERSION,
        "spec": candidate.spec,
        "input": list(input_shape),
        "classes": num_classes,
        "format": written_format,
        "precision": written,
        "scheme": (scheme or QuantScheme()).to_dict() if written == "int8" else None,
        "seed": SEED,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / "probes" / f"{digest}{EXPORTERS.get(written_format).suffix}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")
        try:
            export_candidate(candidate, input_shape, num_classes, partial, precision, scheme, fmt)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    timed_precision = probe_precision(precision, fmt)
    return TimedArtifact(path, fmt, timed_precision)
