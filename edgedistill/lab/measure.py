"""Measure an artifact's latency where the profile says it runs (this version: the host only)."""

from __future__ import annotations

from pathlib import Path

from edgedistill.lab.host_bench import BenchProtocol, LatencyResult, measure_onnx
from edgedistill.profiles import DeviceProfile


def can_measure(profile: DeviceProfile) -> bool:
    return profile.is_host


def measure_artifact(
    profile: DeviceProfile, artifact: Path, protocol: BenchProtocol
) -> LatencyResult | None:
    """The latency of `artifact` on the profile's device, or None when it cannot be reached."""
    if not can_measure(profile):
        return None
    return measure_onnx(artifact, protocol)


def latency_fields(result: LatencyResult | None) -> dict:
    """The measured-latency fields of summary.json; empty (all null) when not measured."""
    if result is None:
        return {}
    return {
        "p50": result.p50,
        "p90": result.p90,
        "p99": result.p99,
        "measured_on": result.measured_on,
        "threads": result.threads,
        "runs": result.runs,
        "runtime": result.runtime,
    }
