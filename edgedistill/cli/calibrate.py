"""`edgedistill calibrate`: measure candidates on the device and fit its latency model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgedistill import atomic
from edgedistill.cli._common import (
    DeviceOpt,
    JsonOpt,
    LabOpt,
    TargetOpt,
    TaskOpt,
    ThreadsOpt,
    emit_json,
    handle_errors,
    progress_bars,
    setup_logging,
)
from edgedistill.errors import UserInputError
from edgedistill.fit import calibrate as calibration_run
from edgedistill.fit.calibrate import DEFAULT_SAMPLES, calibrate_on_host
from edgedistill.fit.profile_check import load_device
from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.inventory import resolve_targets
from edgedistill.lab.measure import measure_artifact
from edgedistill.latency.calibration import calibration_path, overlay_profile
from edgedistill.latency.model import FEATURES
from edgedistill.profiles import MANUAL
from edgedistill.students import enumerate_space
from edgedistill.tasks.task import load_recipe


@handle_errors
def calibrate(
    device: DeviceOpt,
    task: TaskOpt = "digits",
    samples: Annotated[
        int, typer.Option(help="Candidates to measure, spread over the space.")
    ] = DEFAULT_SAMPLES,
    threads: ThreadsOpt = 1,
    lab: LabOpt = None,
    target: TargetOpt = None,
    export_profile: Annotated[
        Path | None,
        typer.Option(
            help="Also write the profile with this fitted model to FILE (YAML), to share with a "
            "team: they use it with --device FILE."
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Measure SAMPLES candidates on DEVICE and store a fitted latency model for it."""
    import yaml

    setup_logging()
    profile = load_device(device)
    recipe = load_recipe(task)
    if samples < len(FEATURES) + 1:
        raise UserInputError(
            f"--samples: the latency model needs at least {len(FEATURES) + 1}, got {samples}"
        )
    if profile.lab.transport == MANUAL:
        raise UserInputError(
            f"--device {profile.name}: no transport reaches it from here, so nothing can time its "
            f"candidates ({profile.lab.notes or 'it is timed by hand'}); its predictions stay "
            "the datasheet roofline"
        )
    measure = None
    if lab is not None or target is not None:
        devices = resolve_targets(lab, target, device)
        if len(devices) != 1:
            raise UserInputError("--target: calibrate one device at a time")
        protocol = BenchProtocol(threads=threads)

        def measure(path: Path):
            return measure_artifact(profile, path, protocol, devices[0])

    elif not profile.is_host:
        raise UserInputError(
            f"--device {profile.name}: this device is measured through a lab file: add "
            "--lab devices.yaml --target NAME"
        )
    if export_profile is not None and export_profile.is_dir():
        raise UserInputError(f"--export-profile {export_profile}: is a directory")
    shape = recipe.input.shape
    space = enumerate_space(shape)
    with progress_bars() as progress:
        if measure is None:
            model = calibrate_on_host(
                profile, space, shape, len(recipe.labels), samples, threads, progress
            )
        else:
            model = calibration_run.calibrate(
                profile, space, shape, len(recipe.labels), samples, measure, None, progress
            )
    path = calibration_path(profile, model.precision)
    if export_profile is not None:
        header = f"# {profile.name} with a latency model fitted on {samples} measurements\n"
        text = yaml.safe_dump(overlay_profile(profile, model), sort_keys=False)
        atomic.write_text(export_profile, header + text)
    if json_output:
        emit_json(
            {
                "device": profile.name,
                "samples": samples,
                "fit_error": model.fit_error,
                "features": list(FEATURES),
                "coefficients": model.coefficients,
                "channel_block": model.channel_block,
                "provenance": model.provenance,
                "path": str(path),
                "profile_file": str(export_profile) if export_profile else None,
            }
        )
        return
    typer.echo(
        f"{profile.name}: calibrated on {samples} candidates, leave-one-out error "
        f"{model.fit_error:.1%} (channel block {model.channel_block}); stored in {path}"
    )
    if export_profile is not None:
        typer.echo(
            f"profile with the fitted model: {export_profile} (use --device {export_profile})"
        )
