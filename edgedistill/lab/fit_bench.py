"""The bench stage of `fit`: the student (and teacher) timed on this host or on lab devices.

`plan_lab_targets` runs in `plan_fit`, before any training: it validates `--lab/--target`,
and connects to every target to check it is reachable and has a runtime for its profile.
`bench_stage` then measures; with several targets the summary's figures are the slowest
target's, and every target's figures are kept under `by_target`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from edgedistill.errors import UserInputError
from edgedistill.lab.check import judge_runtime, probe_device
from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult
from edgedistill.lab.inventory import select_targets
from edgedistill.lab.measure import can_measure, latency_fields, measure_artifact, measure_on_lab
from edgedistill.lab.platforms import platform_for
from edgedistill.lab.pool import run_on_devices
from edgedistill.profiles import MANUAL, DeviceProfile
from edgedistill.progress import ProgressFn
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)


def plan_lab_targets(
    lab: Path | None, target: str | None, profile: DeviceProfile, formats: list[str]
) -> list[DeviceEntry]:
    """Check --lab/--target now, and that every target answers and can run the model."""
    if lab is None and target is None:
        return []
    devices = select_targets(lab, target, profile.name)
    for device in devices:
        needed = platform_for(device).artifact_format
        if needed not in formats:
            raise UserInputError(
                f"--target {device.name}: a {device.transport} device times {needed} models; "
                f"this fit makes {', '.join(formats)} (add --formats {needed})"
            )
    for outcome in run_on_devices(devices, [probe_device]):
        if outcome.error is not None:
            raise outcome.error
        check = outcome.results[0]
        judge_runtime(check, profile, platform_for(outcome.device))
        if not check.ready:
            raise UserInputError(
                f"--target {check.name} ({check.uri}): not ready to measure: "
                f"{'; '.join(check.notes) or check.error}"
            )
    return devices


def bench_stage(
    profile: DeviceProfile,
    targets: list[DeviceEntry],
    artifacts: list[Artifact],
    teacher_file: Callable[[], Path],
    protocol: BenchProtocol,
    progress: ProgressFn,
    notes: list[str],
) -> tuple[dict, dict]:
    """(student latency fields, teacher latency fields); both empty when nothing was measured."""
    if targets:
        return _bench_on_lab(targets, artifacts, teacher_file, protocol, progress, notes)
    if not can_measure(profile):
        if profile.lab.transport == MANUAL:
            notes.append(
                f"latency not measured: {profile.name} has no transport here "
                f"({profile.lab.notes or 'time it by hand'}); fits_budget is the prediction"
            )
        else:
            notes.append(
                f"latency not measured: {profile.name} is reached over {profile.lab.transport};"
                " give --lab FILE --target NAME to measure it there; fits_budget is the prediction"
            )
        return {}, {}
    progress("bench", 0, 2, "student")
    student = latency_fields(measure_artifact(profile, Path(artifacts[0].path), protocol))
    progress("bench", 1, 2, "teacher")
    teacher = latency_fields(measure_artifact(profile, teacher_file(), protocol))
    progress("bench", 2, 2, "done")
    return student, teacher


def _bench_on_lab(
    targets: list[DeviceEntry],
    artifacts: list[Artifact],
    teacher_file: Callable[[], Path],
    protocol: BenchProtocol,
    progress: ProgressFn,
    notes: list[str],
) -> tuple[dict, dict]:
    by_format = {artifact.format: Path(artifact.path) for artifact in artifacts}
    per_target: dict[str, list[Path]] = {}
    teacher: list[Path] = []  # exported once, on first need
    for device in targets:
        student = by_format[platform_for(device).artifact_format]
        per_target[device.name] = [student]
        if student.suffix == ".onnx":  # the teacher exists as ONNX only
            teacher = teacher or [teacher_file()]
            per_target[device.name] += teacher
    progress("bench", 0, 1, "on " + ", ".join(per_target))
    results = measure_on_lab(targets, per_target, protocol, strict=True)
    progress("bench", 1, 1, "done")
    students = {name: found[0] for name, found in results.items()}
    teachers = {name: found[1] for name, found in results.items() if len(found) > 1}
    slowest = max(students, key=lambda name: _upper(students[name]))
    for name, result in students.items():
        if result.validity == "unverified":
            notes.append(f"latency on {name} is unverified: {'; '.join(result.validity_reasons)}")
    student_fields = latency_fields(students[slowest])
    teacher_name = slowest if slowest in teachers else next(iter(teachers), None)
    teacher_fields = latency_fields(teachers[teacher_name]) if teacher_name else {}
    if len(targets) > 1:
        student_fields["by_target"] = {n: latency_fields(r) for n, r in students.items()}
        teacher_fields["by_target"] = {n: latency_fields(r) for n, r in teachers.items()}
    return student_fields, teacher_fields


def _upper(result: LatencyResult) -> float:
    """The figure a budget is judged on: p90, else (benchmark_model) its p95."""
    if result.p90 is not None:
        return result.p90
    return float(result.extra.get("p95", result.p50))
