"""Measure an artifact's latency where it runs: on this host, or on lab devices (ssh, adb, local).

Lab measurements come back with a validity (`edgedistill.lab.validity`) and an audit of their
outputs against the host's (`edgedistill.lab.audit`). `measure_on_lab(..., strict=True)`, what
`fit` uses, refuses a result that is invalid or fails its audit instead of recording it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgedistill.hashing import sha256_file
from edgedistill.lab import validity
from edgedistill.lab.audit import compare, host_reference
from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.errors import UntrustedResultError
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult, measure_onnx
from edgedistill.lab.platforms import platform_for
from edgedistill.lab.pool import Job, run_on_devices
from edgedistill.lab.timing import TimedArtifact
from edgedistill.lab.transports import Transport
from edgedistill.profiles import DeviceProfile

log = logging.getLogger(__name__)


def can_measure(profile: DeviceProfile, targets: list[DeviceEntry] | None = None) -> bool:
    return bool(targets) or profile.is_host


Timed = Path | TimedArtifact  # a Path is timed in the format its suffix names


def measure_artifact(
    profile: DeviceProfile,
    artifact: Timed,
    protocol: BenchProtocol,
    target: DeviceEntry | None = None,
) -> LatencyResult | None:
    """The latency of `artifact` on `target` (a lab device) or, without one, on this host."""
    if target is not None:
        return measure_on_lab([target], [artifact], protocol)[target.name][0]
    if not can_measure(profile):
        return None
    timed = TimedArtifact.of(artifact)
    result = measure_onnx(timed.path, protocol)
    result.precision = timed.precision
    return result


def measure_on_lab(
    targets: list[DeviceEntry],
    artifacts: list[Timed] | dict[str, list[Timed]],
    protocol: BenchProtocol,
    strict: bool = True,
) -> dict[str, list[LatencyResult]]:
    """Time every artifact on every target (targets in parallel); results by target name.

    `artifacts` is one list for every target, or a list per target name; each is timed in its
    format (`TimedArtifact`: a TensorRT engine is built on the device from the ONNX sent).
    Raises the lab's error when a device fails (infrastructure failures are never results)
    and, when strict, UntrustedResultError for an invalid result or a failed audit.
    """
    given = artifacts if isinstance(artifacts, dict) else {t.name: artifacts for t in targets}
    per_target = {name: [TimedArtifact.of(a) for a in paths] for name, paths in given.items()}
    unique = {timed for paths in per_target.values() for timed in paths}
    references = {timed: _host_reference(timed) for timed in unique}

    def jobs_for(device: DeviceEntry) -> list[Job[LatencyResult]]:
        paths = per_target[device.name]
        return [_job(timed, protocol, references[timed]) for timed in paths]

    outcomes = run_on_devices(targets, jobs_for)
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        for outcome in failed[1:]:
            log.error("%s: %s", outcome.device.name, outcome.error)
        raise failed[0].error  # type: ignore[misc]
    results = {outcome.device.name: outcome.results for outcome in outcomes}
    if strict:
        for device_results in results.values():
            for result in device_results:
                refuse_untrusted(result)
    return results


def refuse_untrusted(result: LatencyResult) -> None:
    where = f"{result.target} ({result.measured_on})"
    if result.audit == "failed":
        raise UntrustedResultError(f"{where}: audit failed: {result.audit_detail}")
    if result.validity == "invalid":
        raise UntrustedResultError(
            f"{where}: invalid measurement: {'; '.join(result.validity_reasons)}"
        )


def _host_reference(timed: TimedArtifact) -> Any:
    """Host outputs for the audit, or the reason there are none."""
    if timed.built_on_device:
        return (
            f"a {timed.describe()} engine runs on the device's GPU only; the audit checks that "
            "the engine timed is the one built (sha256)"
        )
    try:
        return host_reference(timed.path)
    except Exception as exc:  # no host runtime for this format, or the runtime refuses it
        return f"no host reference ({str(exc).strip()[:200]})"


def _job(timed: TimedArtifact, protocol: BenchProtocol, reference: Any) -> Job[LatencyResult]:
    def job(transport: Transport) -> LatencyResult:
        log.info("%s: timing %s", transport.uri, timed.describe())
        result = platform_for(transport.device).bench(transport, timed, protocol)
        validity.apply(result, protocol)
        outputs = result.raw.get("audit_outputs")
        expected = result.raw.get("expected_sha256") or sha256_file(timed.path)
        if result.raw.get("model_sha256") not in (None, expected):
            result.audit = "failed"
            result.audit_detail = f"the device timed a different file (sha256 {expected} sent)"
        elif isinstance(reference, str) or outputs is None:
            why = reference if isinstance(reference, str) else "the device tool reports no outputs"
            result.audit, result.audit_detail = "skipped", why
        else:
            verdict = compare(outputs, reference, result.raw.get("model_sha256"), expected)
            result.audit, result.audit_detail = verdict.status, verdict.detail
        log.info(
            "%s: %s p50 %.4f ms, %s, audit %s",
            transport.uri,
            timed.describe(),
            result.p50,
            result.validity,
            result.audit,
        )
        return result

    return job


HISTOGRAM_BINS = 30


def latency_histogram(samples_ms: list[float]) -> dict[str, list]:
    """Per-run times in HISTOGRAM_BINS equal bins between the fastest and the p99.5 run (the
    slowest few runs of a busy host would squeeze everything else into one bin); runs above
    the last edge are counted in the last bin."""
    import numpy as np

    times = np.asarray(samples_ms, dtype=np.float64)
    low, high = float(times.min()), float(np.percentile(times, 99.5))
    if high <= low:
        high = low + 1e-6
    counts, edges = np.histogram(np.clip(times, low, high), bins=HISTOGRAM_BINS, range=(low, high))
    return {"edges_ms": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def latency_fields(result: LatencyResult | None) -> dict:
    """The measured-latency fields of summary.json; empty (all null) when not measured."""
    if result is None:
        return {}
    fields = {
        "p50": result.p50,
        "p90": result.p90,
        "p99": result.p99,
        "measured_on": result.measured_on,
        "threads": result.threads,
        "runs": result.runs,
        "runtime": result.runtime,
        "format": result.format,
        "precision": result.precision,
        "artifact_sha256": result.artifact_sha256,
    }
    if result.deployed is not None:
        fields["deployed"] = result.deployed
    if result.samples_ms:
        fields["histogram"] = latency_histogram(result.samples_ms)
    if "engine_build" in result.extra:
        fields["engine_build"] = result.extra["engine_build"]
    if result.p90 is None and "p95" in result.extra:  # benchmark_model: no p90, a p95
        fields["p95"] = result.extra["p95"]
    if result.target is not None:  # a lab measurement: say how far to trust it
        fields.update(
            target=result.target,
            validity=result.validity,
            validity_reasons=result.validity_reasons,
            audit=result.audit,
            audit_detail=result.audit_detail,
        )
    return fields
