"""Calibrate the latency model: time a spread of candidates (host or lab device), fit, store."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgedistill.fit.probe import export_candidate
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult, measure_onnx
from edgedistill.latency import calibration
from edgedistill.latency.model import LatencyModel
from edgedistill.profiles import DeviceProfile
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.students import Candidate
from edgedistill.students.select import candidate_cost

log = logging.getLogger(__name__)
DEFAULT_SAMPLES = 24  # candidates timed by a calibration: more than twice the ten coefficients


def spread(candidates: list[Candidate], costs: dict[str, int], samples: int) -> list[Candidate]:
    """`samples` candidates evenly spaced in MAC rank, always including the smallest and largest."""
    ordered = sorted(candidates, key=lambda c: costs[c.spec])
    if samples >= len(ordered) or samples < 2:
        return ordered
    step = (len(ordered) - 1) / (samples - 1)
    return [ordered[round(i * step)] for i in range(samples)]


def calibrate_on_host(
    profile: DeviceProfile,
    candidates: list[Candidate],
    input_shape: tuple[int, int, int],
    num_classes: int,
    samples: int = DEFAULT_SAMPLES,
    threads: int = 1,
    progress: ProgressFn = no_progress,
) -> LatencyModel:
    """Measure `samples` candidates with onnxruntime on this host and fit the latency model."""

    protocol = BenchProtocol(threads=threads)
    return calibrate(
        profile,
        candidates,
        input_shape,
        num_classes,
        samples,
        lambda path: measure_onnx(path, protocol),
        calibration.host_fingerprint(threads, tuple(input_shape)),
        progress,
    )


def calibrate(
    profile: DeviceProfile,
    candidates: list[Candidate],
    input_shape: tuple[int, int, int],
    num_classes: int,
    samples: int,
    measure: Callable[[Path], LatencyResult],
    fingerprint: dict[str, str] | None,
    progress: ProgressFn = no_progress,
) -> LatencyModel:
    """Measure `samples` candidates spread over the space with `measure` (on this host, or on a
    lab device), fit the latency model and store it with its provenance. A None fingerprint is
    taken from the first measurement (where it ran, runtime and version, threads)."""

    precision = "fp32"
    costs = {
        c.spec: candidate_cost(c.spec, tuple(input_shape), num_classes, precision)
        for c in candidates
    }
    chosen = spread(candidates, {k: v.macs for k, v in costs.items()}, samples)
    measurements = []
    progress("calibrate", 0, len(chosen), "")
    with tempfile.TemporaryDirectory(prefix="edgedistill-calibrate-") as scratch:
        for index, candidate in enumerate(chosen, start=1):
            path = Path(scratch) / f"candidate{index}.onnx"
            export_candidate(candidate, input_shape, num_classes, path)
            result = measure(path)
            if fingerprint is None:
                fingerprint = {
                    "measured_on": result.measured_on,
                    "runtime": result.runtime,
                    "threads": str(result.threads),
                    "input": "x".join(map(str, input_shape)),
                }
            p90 = result.p90 if result.p90 is not None else result.p50
            measurements.append(
                calibration.measurement(candidate.spec, costs[candidate.spec], result.p50, p90)
            )
            progress("calibrate", index, len(chosen), candidate.spec)
            log.debug("calibrate %s p90 %.4f ms", candidate.spec, p90)
    assert fingerprint is not None
    model = calibration.model_from_cost_fit(profile, precision, measurements, fingerprint)
    path = calibration.save(model, measurements)
    log.info(
        "calibrated %s on %d candidates: leave-one-out error %.1f %% (stored in %s)",
        profile.name,
        len(measurements),
        100 * (model.fit_error or 0.0),
        path,
    )
    return model


def latency_model_for(
    profile: DeviceProfile,
    precision: str,
    threads: int = 1,
    input_shape: tuple[int, ...] | None = None,
) -> LatencyModel:
    """The stored calibration for this device (and, for the host, this machine and, when given,
    this input shape), else the datasheet roofline."""
    fingerprint = calibration.host_fingerprint(threads, input_shape) if profile.is_host else None
    stored = calibration.load(profile, precision, fingerprint)
    if stored is None:
        stored = calibration.from_profile(profile, precision, fingerprint)
    return stored if stored is not None else LatencyModel(profile, precision)
