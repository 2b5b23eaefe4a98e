"""`edgedistill bench`: time an exported model where it will run (this version: the host)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgedistill.cli._common import emit_json, handle_errors


@handle_errors
def bench(
    artifact: Annotated[Path, typer.Argument(help="An exported model (.onnx).")],
    device: Annotated[
        str | None, typer.Option(help="Device profile name or .yaml path [default: host-cpu].")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs, at least (and at least 1 s).")] = 50,
    warmup: Annotated[int, typer.Option(help="Warm-up runs, at least (and at least 0.5 s).")] = 1,
    threads: Annotated[int, typer.Option(help="onnxruntime threads.")] = 1,
    lab: Annotated[
        Path | None, typer.Option(help="Lab file (devices.yaml): measure on its devices.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Lab device name(s), comma-separated (with --lab).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Measure ARTIFACT's latency at batch 1: p50 / p90 / p99 over timed runs after warm-up."""
    from edgedistill.errors import UserInputError
    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.profiles import load_profile

    if lab is not None or target is not None:
        from edgedistill.cli.lab import bench_on_lab

        protocol = BenchProtocol(threads, warmup, 0.5, runs, 1.0)
        return bench_on_lab(artifact, lab, target, device, protocol, json_output)
    device = device or "host-cpu"
    profile = load_profile(device)
    if not artifact.is_file():
        raise UserInputError(f"ARTIFACT {artifact}: no such file")
    if artifact.suffix != ".onnx":
        raise UserInputError(f"ARTIFACT {artifact}: this version benchmarks .onnx files only")
    if runs < 1 or warmup < 1 or threads < 1:
        raise UserInputError("--runs, --warmup and --threads must each be at least 1")
    if not profile.is_host:
        raise UserInputError(
            f"--device {profile.name}: measuring on a lab device needs --lab (not in this "
            "version yet); use --device host-cpu"
        )
    try:
        result = measure_onnx(artifact, BenchProtocol(threads, warmup, 0.5, runs, 1.0))
    except Exception as exc:  # onnxruntime raises its own types for unreadable models
        raise UserInputError(f"ARTIFACT {artifact}: onnxruntime cannot run it ({exc})") from None
    if json_output:
        emit_json({"artifact": str(artifact), "device": profile.name, **result.summary()})
    else:
        typer.echo(
            f"{artifact}: p50 {result.p50:.4f} ms, p90 {result.p90:.4f} ms, "
            f"p99 {result.p99:.4f} ms "
            f"({result.runs} runs in {result.seconds:.1f} s, {result.threads} thread(s), "
            f"{result.runtime}, measured on {result.measured_on})"
        )
