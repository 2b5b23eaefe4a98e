"""The bench stage of `fit`: the student (and teacher) timed on this host or on lab devices.

`plan_lab_targets` runs in `plan_fit`, before any training: it validates `--lab/--target`,
and connects to every target to check it is reachable and has a runtime for its profile.
`bench_stage` then measures what ships: each target times the deployed format and precision on
its own runtime (`lab.timing.choose`: TFLite on LiteRT, a TensorRT engine built on the device,
benchmark_model on Android); a target that cannot time it times the nearest artifact it can,
and the figures say `deployed: false` with a note. With several targets the summary's figures
are the slowest target's, and every target's figures are kept under `by_target`.
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
from edgedistill.lab.timing import BUILT_ON_DEVICE, Choice, TimedArtifact, choose
from edgedistill.profiles import MANUAL, DeviceProfile
from edgedistill.progress import ProgressFn
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)


def deployed_format(profile: DeviceProfile, formats: list[str]) -> str:
    """The format that ships from a chain of `formats`: the last one, or the profile's last
    when that one is built on the device from the chain's last (a TensorRT engine, pending)."""
    shipped = profile.deploy.formats[-1]
    if BUILT_ON_DEVICE.get(shipped) == formats[-1]:
        return shipped
    return formats[-1]


def plan_lab_targets(
    lab: Path | None, target: str | None, profile: DeviceProfile, formats: list[str]
) -> list[DeviceEntry]:
    """Check --lab/--target now, and that every target answers and can time what ships."""
    if lab is None and target is None:
        return []
    devices = select_targets(lab, target, profile.name)
    shipped = deployed_format(profile, formats)
    for device in devices:
        platform = platform_for(device)
        timeable = [f for f in [*formats, shipped] if f in platform.times]
        if not timeable:
            needed = ", ".join(platform.times)
            raise UserInputError(
                f"--target {device.name}: a {device.transport} device times {needed} models; "
                f"this fit makes {', '.join(formats)} (add --formats {next(iter(platform.times))})"
            )
    for outcome in run_on_devices(devices, [probe_device]):
        if outcome.error is not None:
            raise outcome.error
        check = outcome.results[0]
        platform = platform_for(outcome.device)
        judge_runtime(check, profile, platform)
        if not check.ready:
            raise UserInputError(
                f"--target {check.name} ({check.uri}): not ready to measure: "
                f"{'; '.join(check.notes) or check.error}"
            )
        if shipped in platform.times and platform.timing_runtime_missing(shipped, check.runtimes):
            raise UserInputError(
                f"--target {check.name} ({check.uri}): this fit ships {shipped}, and the device "
                f"has nothing that times it ({' or '.join(platform.times[shipped])}); install "
                f"one there (or point the lab file's python / trtexec at it), or give --formats "
                "onnx to ship and time ONNX"
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
    deploy_format: str | None = None,
    precision: str | None = None,
) -> tuple[dict, dict]:
    """(student latency fields, teacher latency fields); both empty when nothing was measured.
    `deploy_format` / `precision`: what ships (default: the last artifact, at its precision)."""
    deploy_format = deploy_format or artifacts[-1].format
    precision = precision or artifacts[-1].precision
    if targets:
        return _bench_on_lab(
            targets, artifacts, teacher_file, protocol, progress, notes, deploy_format, precision
        )
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
    hub = artifacts[0]  # this host times ONNX
    timed = TimedArtifact(Path(hub.path), hub.format, hub.precision)
    measured = measure_artifact(profile, timed, protocol)
    if measured is not None:
        measured.deployed = deploy_format == hub.format
        if not measured.deployed:
            notes.append(
                f"latency on {profile.name} is of the {hub.format} {hub.precision} artifact, not "
                f"of the {deploy_format} {precision} one that ships (this host times ONNX)"
            )
    student = latency_fields(measured)
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
    deploy_format: str,
    precision: str,
) -> tuple[dict, dict]:
    written = [(a.format, a.precision, Path(a.path)) for a in artifacts]
    per_target: dict[str, list[TimedArtifact]] = {}
    choices: dict[str, Choice] = {}
    teacher: list[Path] = []  # exported once, on first need
    for device in targets:
        platform = platform_for(device)
        choice = choose(deploy_format, precision, written, platform.times, device.name)
        choices[device.name] = choice
        per_target[device.name] = [choice.timed]
        if choice.note:
            notes.append(choice.note)
        if "onnx" in platform.times:  # the teacher exists as ONNX only
            teacher = teacher or [teacher_file()]
            per_target[device.name].append(_teacher_timed(teacher[0], choice.timed))
    progress("bench", 0, 1, "on " + ", ".join(per_target))
    results = measure_on_lab(targets, per_target, protocol, strict=True)
    progress("bench", 1, 1, "done")
    for name, found in results.items():
        found[0].deployed = choices[name].deployed
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


def _teacher_timed(onnx: Path, student: TimedArtifact) -> TimedArtifact:
    """The teacher timed like the student where its fp32 ONNX allows: as a TensorRT engine of
    the same precision (built on the device; int8 would need a quantized teacher), else ONNX."""
    if student.built_on_device and student.precision in ("fp32", "fp16"):
        return TimedArtifact(onnx, student.format, student.precision)
    return TimedArtifact(onnx, "onnx", "fp32")


def slowest_p90(results: dict[str, list[LatencyResult]]) -> float:
    """The budget figure (p90, else p95) of the slowest target's first result."""
    return max(_upper(found[0]) for found in results.values())


def _upper(result: LatencyResult) -> float:
    """The figure a budget is judged on: p90, else (benchmark_model) its p95."""
    if result.p90 is not None:
        return result.p90
    return float(result.extra.get("p95", result.p50))
