"""`edgedistill calibrate`: measure candidates on the device, in the format it ships and on its
runtime (TFLite over adb and ssh, TensorRT engines built on a Jetson), and fit its latency model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgedistill import atomic
from edgedistill.cli._common import (
    DeviceOpt,
    JsonOpt,
    LabOpt,
    PrecisionOpt,
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
from edgedistill.fit.calibrate import DEFAULT_SAMPLES, calibrate_on_host, calibration_precision
from edgedistill.fit.probe import runtime_of, timed_format
from edgedistill.fit.profile_check import load_device
from edgedistill.fit.search import resolve_precision
from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.inventory import resolve_targets
from edgedistill.lab.measure import measure_artifact
from edgedistill.lab.timing import TimedArtifact
from edgedistill.latency.calibration import PROBE_FORMAT, calibration_path, overlay_profile
from edgedistill.latency.model import feature_names
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
    precision: PrecisionOpt = None,
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
    """Measure SAMPLES candidates on DEVICE, made in the format it ships at PRECISION (host:
    ONNX, int8 QDQ; rpi5 / phones: TFLite; Jetsons: TensorRT engines built on the device), and
    store a fitted latency model for that device, runtime, format and precision."""
    import yaml

    setup_logging()
    profile = load_device(device)
    recipe = load_recipe(task)
    if profile.lab.transport == MANUAL:
        raise UserInputError(
            f"--device {profile.name}: no transport reaches it from here, so nothing can time its "
            f"candidates ({profile.lab.notes or 'it is timed by hand'}); its predictions stay "
            "the datasheet roofline"
        )
    measure = None
    fmt = PROBE_FORMAT if profile.is_host else timed_format(profile)
    if lab is not None or target is not None:
        devices = resolve_targets(lab, target, device)
        if len(devices) != 1:
            raise UserInputError("--target: calibrate one device at a time")
        protocol = BenchProtocol(threads=threads)

        def measure(timed: TimedArtifact):
            return measure_artifact(profile, timed, protocol, devices[0])

    elif not profile.is_host:
        raise UserInputError(
            f"--device {profile.name}: this device is measured through a lab file: add "
            "--lab devices.yaml --target NAME"
        )
    requested = resolve_precision(precision, profile)
    measured = calibration_precision(profile, requested)
    if measured is None:
        raise UserInputError(
            f"--precision {requested}: {profile.name} deploys {requested} artifacts that a "
            f"{fmt} calibration does not time; its {requested} predictions stay the "
            f"datasheet roofline (--precision fp32 calibrates its fp32 {fmt})"
        )
    features = feature_names(measured)
    if samples < len(features) + 1:
        raise UserInputError(
            f"--samples: the {measured} latency model needs at least {len(features) + 1}, "
            f"got {samples}"
        )
    if export_profile is not None and export_profile.is_dir():
        raise UserInputError(f"--export-profile {export_profile}: is a directory")
    shape = recipe.input.shape
    space = enumerate_space(shape, vocabulary=recipe.vocabulary)
    with progress_bars() as progress:
        if measure is None:
            model = calibrate_on_host(
                profile, space, shape, len(recipe.labels), samples, threads, progress, measured
            )
        else:
            model = calibration_run.calibrate(
                profile,
                space,
                shape,
                len(recipe.labels),
                samples,
                measure,
                None,
                progress,
                measured,
                fmt,
            )
    path = calibration_path(profile, model.precision, fmt, runtime_of(fmt), tuple(shape))
    if export_profile is not None:
        header = f"# {profile.name} with a latency model fitted on {samples} measurements\n"
        text = yaml.safe_dump(overlay_profile(profile, model, fmt), sort_keys=False)
        atomic.write_text(export_profile, header + text)
    if json_output:
        emit_json(
            {
                "device": profile.name,
                "precision": model.precision,
                "format": fmt,
                "runtime": runtime_of(fmt),
                "samples": samples,
                "fit_error": model.fit_error,
                "features": list(features),
                "coefficients": model.coefficients,
                "channel_block": model.channel_block,
                "provenance": model.provenance,
                "path": str(path),
                "profile_file": str(export_profile) if export_profile else None,
            }
        )
        return
    if measured != requested:
        typer.echo(
            f"note: {requested} on {profile.name} runs the {measured} {fmt} artifact: "
            f"calibrated {measured}",
            err=True,
        )
    typer.echo(
        f"{profile.name} {fmt} {model.precision}: calibrated on {samples} candidates, "
        f"leave-one-out error {model.fit_error:.1%} (channel block {model.channel_block}); "
        f"stored in {path}"
    )
    if export_profile is not None:
        typer.echo(
            f"profile with the fitted model: {export_profile} (use --device {export_profile})"
        )
