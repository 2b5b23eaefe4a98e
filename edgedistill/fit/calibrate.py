"""Calibrate the latency model: time a spread of candidates (host or lab device), fit, store.

Each (runtime, format, precision) has its own calibration: the candidates are made in the form
the device ships (fit.probe: ONNX here; TFLite on an rpi5 or a phone; a TensorRT engine built on
a Jetson) at the run's precision, and timed on the device's runtime. fp16 has no fp16 ONNX:
where the device deploys that fp32 ONNX (host-cpu), the fp32 calibration predicts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edgedistill.export import EXPORTERS
from edgedistill.export._registry import artifact_precision
from edgedistill.fit.probe import probe_artifact, probe_precision, runtime_of, timed_format
from edgedistill.inputs import takes_tokens
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult, measure_onnx
from edgedistill.lab.timing import TimedArtifact
from edgedistill.latency import calibration
from edgedistill.latency.model import LatencyModel
from edgedistill.profiles import DeviceProfile
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.quant.scheme import scheme_for
from edgedistill.students import Candidate
from edgedistill.students.cost_table import costs_for

log = logging.getLogger(__name__)
DEFAULT_SAMPLES = 24  # candidates timed by a calibration: over twice either model's coefficients


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
    precision: str = "fp32",
) -> LatencyModel:
    """Measure `samples` candidates with onnxruntime on this host and fit the latency model
    of `precision` (the probe's: fp16 calibrates fp32)."""

    protocol = BenchProtocol(threads=threads)
    return calibrate(
        profile,
        candidates,
        input_shape,
        num_classes,
        samples,
        lambda timed: measure_onnx(timed.path, protocol),
        calibration.host_fingerprint(threads, tuple(input_shape)),
        progress,
        precision,
        calibration.PROBE_FORMAT,
    )


def calibrate(
    profile: DeviceProfile,
    candidates: list[Candidate],
    input_shape: tuple[int, int, int],
    num_classes: int,
    samples: int,
    measure: Callable[[TimedArtifact], LatencyResult],
    fingerprint: dict[str, str] | None,
    progress: ProgressFn = no_progress,
    precision: str = "fp32",
    fmt: str | None = None,
) -> LatencyModel:
    """Measure `samples` candidates spread over the space with `measure` (on this host, or on a
    lab device), fit the latency model and store it with its provenance. A None fingerprint is
    taken from the first measurement (where it ran, runtime and version, threads, format).

    The candidates are made in `fmt` (default: what the profile ships, fit.probe.timed_format)
    at probe_precision(precision), int8 with the scheme the format's runtime takes; the model
    is fitted and stored for that runtime, format and precision."""

    fmt = fmt or timed_format(profile)
    precision = probe_precision(precision, fmt)
    scheme = scheme_for([runtime_of(fmt)]) if precision == "int8" else None
    # fp32 costs at every precision, as the search scores them: the fitted coefficients of
    # each precision absorb its bytes per element
    costs = costs_for([c.spec for c in candidates], tuple(input_shape), num_classes)
    chosen = spread(candidates, {k: v.macs for k, v in costs.items()}, samples)
    measurements = []
    progress("calibrate", 0, len(chosen), "")
    for index, candidate in enumerate(chosen, start=1):
        timed = probe_artifact(candidate, input_shape, num_classes, precision, scheme, fmt)
        result = measure(timed)
        if fingerprint is None:
            fingerprint = {
                "measured_on": result.measured_on,
                "runtime": result.runtime,
                "threads": str(result.threads),
                "input": "x".join(map(str, input_shape)),
            }
            if result.target:
                fingerprint["lab_target"] = result.target
        fingerprint = {**fingerprint, "format": fmt, "runtime_name": runtime_of(fmt)}
        p90 = result.p90 if result.p90 is not None else result.p50
        cost = costs[candidate.spec]
        measurements.append(
            calibration.measurement(candidate.spec, cost, result.p50, p90, precision)
        )
        progress("calibrate", index, len(chosen), candidate.spec)
        log.debug("calibrate %s p90 %.4f ms", candidate.spec, p90)
    assert fingerprint is not None
    model = calibration.model_from_cost_fit(profile, precision, measurements, fingerprint)
    path = calibration.save(model, measurements, fmt, runtime_of(fmt), tuple(input_shape))
    log.info(
        "calibrated %s %s on %d candidates: leave-one-out error %.1f %% (stored in %s)",
        profile.name,
        precision,
        len(measurements),
        100 * (model.fit_error or 0.0),
        path,
    )
    return model


def calibration_precision(profile: DeviceProfile, precision: str) -> str | None:
    """The precision of the calibration that predicts a `precision` run on `profile`: the probe's
    in the format the device ships (fp16 ONNX -> fp32) where the device deploys an artifact of
    that precision (host-cpu runs the fp32 ONNX of an fp16 run), else None: no calibration
    describes it (the datasheet roofline predicts it)."""
    measured = probe_precision(precision, timed_format(profile))
    if measured == precision:
        return measured
    deployed = artifact_precision(EXPORTERS.get(profile.deploy.formats[-1]), precision)
    return measured if deployed == measured else None


def latency_model_for(
    profile: DeviceProfile,
    precision: str,
    threads: int = 1,
    input_shape: tuple[int, ...] | None = None,
) -> LatencyModel:
    """The stored calibration of this precision for this device, in the format it ships and
    on its runtime (and, for the host, this machine and, when given, this input shape), else
    the datasheet roofline at `precision`. The model's precision is the calibration's (fp32
    for an fp16 run on host-cpu)."""
    measured = calibration_precision(profile, precision)
    if measured is None:
        return LatencyModel(profile, precision)
    fmt = timed_format(profile)
    fingerprint = calibration.host_fingerprint(threads, input_shape) if profile.is_host else None
    shape = tuple(input_shape) if input_shape is not None else None
    stored = calibration.load(profile, measured, fingerprint, fmt, runtime_of(fmt), shape)
    if stored is None and (shape is None or not takes_tokens(shape)):
        # a profile's fitted models price image models
        stored = calibration.from_profile(profile, measured, fingerprint, fmt)
    return stored if stored is not None else LatencyModel(profile, precision)


def precision_note(profile: DeviceProfile, precision: str, model: LatencyModel) -> str | None:
    """Why a `precision` run is predicted by a model of another precision, when it is."""
    if model.precision == precision:
        return None
    fmt = timed_format(profile)
    return (
        f"{precision} on {profile.name}: no {precision} {fmt} is written "
        f"(the {fmt} artifact stays {model.precision}, and that is what "
        f"{profile.name} runs), so latency is predicted by the {model.precision} calibration"
    )
