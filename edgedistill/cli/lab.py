"""`edgedistill lab check FILE`: probe every device of a lab file and print what was found."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgedistill.cli._common import (
    JsonOpt,
    TargetOpt,
    VerboseOpt,
    emit_json,
    handle_errors,
    setup_logging,
    stderr,
)
from edgedistill.errors import UserInputError
from edgedistill.lab.check import DeviceCheck, check_devices
from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.inventory import load_lab, parse_targets, resolve_targets
from edgedistill.lab.measure import measure_on_lab

app = typer.Typer(help="Lab devices reached over ssh, adb or locally (a devices.yaml file).")


@app.command("check")
@handle_errors
def check(
    lab_file: Annotated[Path, typer.Argument(metavar="FILE", help="The lab file (devices.yaml).")],
    target: TargetOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Reachability, runtimes, free disk, CPU governor and clocks, temperatures, per device.

    Exit status 0 when every device is reachable and has a runtime its profile uses, 1 when
    one is not, 2 when the lab file is invalid.
    """
    setup_logging(verbose)
    lab = load_lab(lab_file, flag="FILE")
    devices = lab.select(parse_targets(target)) if target else list(lab.devices.values())
    checks = check_devices(lab_file, devices)
    if json_output:
        emit_json({"lab": str(lab_file), "devices": [c.to_dict() for c in checks]})
    else:
        _print_table(checks)
    failing = [c.name for c in checks if not c.ready]
    if failing:
        stderr.print(f"[bold red]not ready:[/] {', '.join(failing)}")
        raise typer.Exit(1)


def _print_table(checks: list[DeviceCheck]) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    for item in checks:
        table = Table(
            title=escape(f"{item.name}  {item.uri}  (profile {item.profile})"),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_header=False,
        )
        table.add_column("what", style="bold")
        table.add_column("found")
        for name, value in _rows(item):
            table.add_row(name, escape(value))
        Console(highlight=False).print(table)


def _rows(item: DeviceCheck) -> list[tuple[str, str]]:
    rows = [("reachable", "yes" if item.reachable else f"NO: {item.error}")]
    if item.reachable:
        runtimes = [f"{k} {v}" for k, v in item.runtimes.items() if v]
        disk = item.free_disk_mb
        rows += [
            ("system", item.system or "?"),
            ("runtimes", ", ".join(runtimes) or "none found"),
            ("free disk", f"{disk / 1024:.1f} GiB" if disk is not None else "?"),
            ("upload", f"{item.upload}, sha256 checked on the device" if item.upload else "?"),
            *_state_rows(item.state),
        ]
        if item.error:
            rows.append(("problem", item.error))
    rows += [("note", note) for note in item.notes]
    rows.append(("ready", "yes" if item.ready else "NO"))
    return rows


def _state_rows(state: dict[str, Any]) -> list[tuple[str, str]]:
    governors = sorted(set((state.get("governors") or {}).values()))
    freqs = list((state.get("freq_mhz") or {}).values())
    temps = state.get("temps_c") or {}
    throttle = state.get("throttle") or {}
    rows = [
        ("CPU governor", ", ".join(governors) or "not readable"),
        (
            "CPU clock",
            f"{min(freqs):.0f}-{max(freqs):.0f} MHz over {len(freqs)} CPUs"
            + (f" ({state['freq_source']})" if state.get("freq_source") else "")
            if freqs
            else "not readable",
        ),
        (
            "temperature",
            ", ".join(f"{k} {v:.1f} C" for k, v in sorted(temps.items(), key=lambda kv: -kv[1])[:4])
            if temps
            else "not readable",
        ),
    ]
    if "thermal_status" in state:
        rows.append(("thermal status", str(state["thermal_status"])))
    if throttle:
        flags = throttle.get("flags")
        detail = ", ".join(flags) if flags else "none"
        if "core_throttle_count" in throttle:
            detail += f"; core throttle events since boot {throttle['core_throttle_count']}"
        rows.append(("throttling", detail))
    else:
        rows.append(("throttling", "not readable"))
    return rows


def bench_on_lab(
    artifact: Path,
    lab: Path | None,
    target: str | None,
    device: str | None,
    protocol: BenchProtocol,
    json_output: bool,
) -> None:
    """`bench --lab FILE --target A,B`: time ARTIFACT on each device (in parallel) and report."""
    if not artifact.is_file():
        raise UserInputError(f"ARTIFACT {artifact}: no such file")
    if artifact.suffix not in (".onnx", ".tflite"):
        raise UserInputError(f"ARTIFACT {artifact}: lab devices time .onnx and .tflite files")
    if min(protocol.runs, protocol.warmup_runs, protocol.threads) < 1:
        raise UserInputError("--runs, --warmup and --threads must each be at least 1")
    devices = resolve_targets(lab, target, device)
    results = measure_on_lab(devices, [artifact], protocol, strict=False)
    measured = [(entry, results[entry.name][0]) for entry in devices]
    if json_output:
        documents = [{"profile": entry.profile, **r.summary()} for entry, r in measured]
        emit_json({"artifact": str(artifact), "results": documents})
    else:
        for entry, result in measured:
            p90 = f"{result.p90:.4f}" if result.p90 is not None else "n/a"
            typer.echo(
                f"{entry.name}: p50 {result.p50:.4f} ms, p90 {p90} ms "
                f"({result.runs} runs in {result.seconds:.1f} s, {result.runtime}, measured on "
                f"{result.measured_on}); {result.validity}, audit {result.audit}"
            )
            for reason in result.validity_reasons:
                typer.echo(f"  {result.validity}: {reason}")
            if result.audit_detail:
                typer.echo(f"  audit: {result.audit_detail}")
    untrusted = [
        entry.name
        for entry, result in measured
        if result.validity == "invalid" or result.audit == "failed"
    ]
    if untrusted:
        stderr.print(f"[bold red]not a result:[/] {', '.join(untrusted)} (see above)")
        raise typer.Exit(1)
