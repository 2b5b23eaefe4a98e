"""`edgedistill bench`: time an exported model, or a candidate architecture, where it will run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgedistill.cli._common import (
    HostDeviceOpt,
    JsonOpt,
    LabOpt,
    TargetOpt,
    TaskOpt,
    ThreadsOpt,
    emit_json,
    handle_errors,
)
from edgedistill.cli.lab import bench_on_lab
from edgedistill.errors import UserInputError
from edgedistill.fit.calibrate import latency_model_for
from edgedistill.fit.probe import export_candidate
from edgedistill.fit.profile_check import load_device
from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
from edgedistill.students import parse_student
from edgedistill.tasks.task import load_recipe


@handle_errors
def bench(
    artifact: Annotated[
        Path | None, typer.Argument(help="An exported model (.onnx); or use --candidate.")
    ] = None,
    candidate: Annotated[
        str | None,
        typer.Option(
            metavar="SPEC",
            help="Time this student architecture (a spec as `search` prints it) with random "
            "weights instead of a file, and show its predicted latency beside the measurement.",
        ),
    ] = None,
    task: TaskOpt = "digits",
    device: HostDeviceOpt = None,
    runs: Annotated[int, typer.Option(help="Timed runs, at least (and at least 1 s).")] = 50,
    warmup: Annotated[int, typer.Option(help="Warm-up runs, at least (and at least 0.5 s).")] = 1,
    threads: ThreadsOpt = 1,
    lab: LabOpt = None,
    target: TargetOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Measure latency at batch 1: p50 / p90 / p99 over timed runs after warm-up."""

    if (artifact is None) == (candidate is None):
        raise UserInputError("give either ARTIFACT (a model file) or --candidate SPEC, not both")
    if candidate is not None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgedistill-candidate-") as scratch:
            return _bench_candidate(
                candidate,
                task,
                Path(scratch),
                device,
                runs,
                warmup,
                threads,
                lab,
                target,
                json_output,
            )
    assert artifact is not None
    return _bench_file(artifact, device, runs, warmup, threads, lab, target, json_output)


def _bench_candidate(
    spec: str, task: str, scratch: Path, device, runs, warmup, threads, lab, target, json_output
) -> None:
    import sys

    candidate = parse_student(spec, flag="--candidate")
    recipe = load_recipe(task)
    profile = load_device(device or "host-cpu")
    path = scratch / "candidate.onnx"
    cost = export_candidate(candidate, recipe.input.shape, len(recipe.labels), path)
    model = latency_model_for(profile, "fp32", threads, recipe.input.shape)
    predicted = {
        "candidate": candidate.spec,
        "params": cost.params,
        "macs": cost.macs,
        "predicted_ms": model.predict(cost),
        "calibrated": model.calibrated,
    }
    if not json_output:
        state = "calibrated" if model.calibrated else "uncalibrated, datasheet"
        print(
            f"{candidate.spec}: {cost.params:,} params, {cost.macs:,} MACs; predicted p90 on "
            f"{profile.name} {predicted['predicted_ms']:.4f} ms ({state})",
            file=sys.stderr if lab is not None or target is not None else sys.stdout,
        )
    _bench_file(path, device, runs, warmup, threads, lab, target, json_output, predicted)


def _bench_file(
    artifact: Path, device, runs, warmup, threads, lab, target, json_output, extra=None
) -> None:

    if lab is not None or target is not None:
        protocol = BenchProtocol(threads, warmup, 0.5, runs, 1.0)
        return bench_on_lab(artifact, lab, target, device, protocol, json_output)
    device = device or "host-cpu"
    profile = load_device(device)
    if not artifact.is_file():
        raise UserInputError(f"ARTIFACT {artifact}: no such file")
    if artifact.suffix != ".onnx":
        raise UserInputError(f"ARTIFACT {artifact}: this version benchmarks .onnx files only")
    if runs < 1 or warmup < 1 or threads < 1:
        raise UserInputError("--runs, --warmup and --threads must each be at least 1")
    if not profile.is_host:
        raise UserInputError(
            f"--device {profile.name}: this device is measured through a lab file: add "
            "--lab devices.yaml --target NAME (or use --device host-cpu)"
        )
    try:
        result = measure_onnx(artifact, BenchProtocol(threads, warmup, 0.5, runs, 1.0))
    except Exception as exc:  # onnxruntime raises its own types for unreadable models
        raise UserInputError(f"ARTIFACT {artifact}: onnxruntime cannot run it ({exc})") from None
    if json_output:
        document = {"artifact": str(artifact), "device": profile.name, **result.summary()}
        if extra is not None:
            document = {**extra, "device": profile.name, **result.summary()}
        emit_json(document)
    else:
        label = extra["candidate"] if extra is not None else artifact
        typer.echo(
            f"{label}: p50 {result.p50:.4f} ms, p90 {result.p90:.4f} ms, "
            f"p99 {result.p99:.4f} ms "
            f"({result.runs} runs in {result.seconds:.1f} s, {result.threads} thread(s), "
            f"{result.runtime}, measured on {result.measured_on})"
        )
