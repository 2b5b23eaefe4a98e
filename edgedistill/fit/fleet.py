"""`fit --device A,B,C --budget X[,Y,Z]`: one fit that serves several devices.

The task, the teacher (fed, or trained once) and its output cache are shared; each device gets
its own search, student, export, measurements and bundle in `OUT/DEVICE/` (a run directory like
a single fit's). A student that several devices choose is distilled once: the later runs adopt
the first one's checkpoint (int8 runs still quantize per device, since their schemes may
differ). `OUT/summary.json` indexes the runs (FleetSummary). With `--lab FILE --target A,B`,
each target measures the device whose profile it names. `--resume` continues the devices that
did not finish; finished ones are kept as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgedistill import __version__, atomic
from edgedistill.distill.interrupt import StopFlag
from edgedistill.errors import UserInputError
from edgedistill.fit import run_dir
from edgedistill.fit.pipeline import run_fit
from edgedistill.fit.plan import FitOptions, FitPlan, load_inputs, plan_fit
from edgedistill.fit.profile_check import load_device
from edgedistill.lab.inventory import load_lab, parse_targets
from edgedistill.paths import check_new_out
from edgedistill.profiles import load_profile
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.fleet import DeviceRun, FleetSummary
from edgedistill.records.summary import RunSummary

log = logging.getLogger(__name__)

INDEX = "summary.json"


@dataclass
class FleetPlan:
    out: Path
    options: list[FitOptions]  # one per device, --out OUT/DEVICE
    finished: dict[str, RunSummary] = field(default_factory=dict)  # --resume: kept as they are


def is_fleet(device: str) -> bool:
    return "," in device


def _names(value: str, flag: str) -> list[str]:
    names = [part.strip() for part in value.split(",")]
    if any(not name for name in names):
        raise UserInputError(f"{flag} {value}: an empty name between commas")
    return names


def _targets_for(options: FitOptions, devices: list[str]) -> dict[str, str | None]:
    """--target names split by the profile each lab device names: {device: "T1,T2" | None}."""
    if options.lab is None or options.target is None:
        return dict.fromkeys(devices)
    lab = load_lab(options.lab)
    chosen = lab.select(parse_targets(options.target))
    by_device: dict[str, list[str]] = {device: [] for device in devices}
    for entry in chosen:
        profile = load_profile(entry.profile, flag=f"{options.lab}: device {entry.name}").name
        if profile not in by_device:
            raise UserInputError(
                f"--target {entry.name}: its profile in {options.lab} is {profile}, which is "
                f"not among --device {','.join(devices)}"
            )
        by_device[profile].append(entry.name)
    return {device: ",".join(names) or None for device, names in by_device.items()}


def plan_fleet(options: FitOptions) -> FleetPlan:
    """One FitOptions per device; OUT checked (new, or --resume of a fleet run)."""
    devices = _names(options.device, "--device")
    if len(set(devices)) != len(devices):
        raise UserInputError(f"--device {options.device}: a device is named twice")
    for device in devices:
        load_device(device)  # every name checked before anything is read or written
    budgets = _names(options.budget, "--budget")
    if len(budgets) == 1:
        budgets *= len(devices)
    if len(budgets) != len(devices):
        raise UserInputError(
            f"--budget {options.budget}: give one budget, or one per device ({len(devices)} "
            f"devices, {len(budgets)} budgets)"
        )
    out = options.out or Path("edgedistill-runs") / f"fit-fleet-{time.strftime('%Y%m%d-%H%M%S')}"
    if options.resume:
        if not out.is_dir():
            raise UserInputError(f"--resume: {out} holds no fit of several devices to continue")
    else:
        check_new_out(out)
    targets = _targets_for(options, devices)
    plans, finished = [], {}
    for device, budget in zip(devices, budgets, strict=True):
        device_out = out / device
        if options.resume and (device_out / INDEX).is_file():
            finished[device] = RunSummary.model_validate_json((device_out / INDEX).read_text())
            continue
        staged = (run_dir.staging_for(device_out) / run_dir.RUN_FILE).is_file()
        plans.append(
            dataclasses.replace(
                options,
                device=device,
                budget=budget,
                out=device_out,
                target=targets[device],
                lab=options.lab if targets[device] else None,
                resume=options.resume and staged,
            )
        )
    return FleetPlan(out, plans, finished)


def _for_device(progress: ProgressFn, device: str) -> ProgressFn:
    def report(stage: str, done: int, total: int | None, note: str = "") -> None:
        progress(f"{device}: {stage}", done, total, note)

    return report


def run_fleet(
    fleet: FleetPlan, progress: ProgressFn = no_progress, stop: StopFlag | None = None
) -> FleetSummary:
    """Plan every device first (every input checked before any training), then run them."""
    created = not fleet.out.exists()
    plans: list[FitPlan] = []
    try:
        if fleet.options:
            inputs = load_inputs(fleet.options[0])  # the task and teacher, read once
            plans = [plan_fit(options, inputs) for options in fleet.options]
    except BaseException:
        if created and fleet.out.is_dir() and not any(fleet.out.iterdir()):
            fleet.out.rmdir()  # nothing half-written left behind
        raise
    summaries = dict(fleet.finished)
    seconds: dict[str, float] = {}
    distilled: dict[str, Path] = {
        summary.student.spec: fleet.out / device / "checkpoint"
        for device, summary in fleet.finished.items()
    }
    for plan in plans:
        device = plan.profile.name
        plan.shared_checkpoints = dict(distilled)
        started = time.perf_counter()
        summary = run_fit(plan, _for_device(progress, device), stop)
        assert summary is not None  # a single process: rank 0
        seconds[device] = round(time.perf_counter() - started, 3)
        summaries[device] = summary
        distilled.setdefault(summary.student.spec, plan.out / "checkpoint")
    index = _index(fleet, summaries, seconds)
    atomic.write_json(fleet.out / INDEX, index.model_dump(mode="json"))
    return index


def _index(
    fleet: FleetPlan, summaries: dict[str, RunSummary], seconds: dict[str, float]
) -> FleetSummary:
    order = [options.device for options in fleet.options]
    order = [*fleet.finished, *order]
    first_with: dict[str, str] = {}
    runs = []
    for device in order:
        summary = summaries[device]
        spec = summary.student.spec
        shared = first_with.setdefault(spec, device)
        runs.append(
            DeviceRun(
                device=device,
                budget_ms=summary.budget_ms,
                run=device,
                fits_budget=summary.fits_budget,
                fits_budget_basis=summary.fits_budget_basis,
                student=spec,
                precision=summary.student.precision,
                metric=summary.student.metric,
                accuracy=summary.student.accuracy,
                retention=summary.retention,
                p90_ms=summary.latency_ms.p90,
                predicted_ms=summary.latency_ms.predicted,
                shared_student_with=None if shared == device else shared,
                warnings=summary.warnings,
            )
        )
    first = summaries[order[0]]
    return FleetSummary(
        edgedistill_version=__version__,
        task=first.task.name,
        teacher_accuracy=first.teacher.accuracy,
        fits_budget=all(run.fits_budget for run in runs),
        devices=runs,
        stages_s=seconds,
    )
