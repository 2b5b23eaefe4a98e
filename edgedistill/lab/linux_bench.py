"""Time an artifact on a Linux device with the device-side runner (targets/linux/runner.py)."""

from __future__ import annotations

from pathlib import Path

from edgedistill.errors import UserInputError
from edgedistill.lab.device_bench import DEVICE_BENCHES
from edgedistill.lab.device_script import json_document, run_device_script
from edgedistill.lab.errors import LabInfrastructureError
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult
from edgedistill.lab.transports import Transport

AUDIT_INPUTS = 3
NO_RUNTIME = 3  # the runner's exit status when the device lacks the model's runtime


def runner_argv(remote_model: str, protocol: BenchProtocol, max_seconds: float) -> list[str]:
    return [
        "bench",
        remote_model,
        "--threads",
        str(protocol.threads),
        "--warmup-runs",
        str(protocol.warmup_runs),
        "--warmup-seconds",
        repr(protocol.warmup_s),
        "--runs",
        str(protocol.runs),
        "--min-seconds",
        repr(protocol.min_seconds),
        "--max-seconds",
        repr(max_seconds),
        "--audit-inputs",
        str(AUDIT_INPUTS),
    ]


@DEVICE_BENCHES.register("linux")
def bench_linux(transport: Transport, artifact: Path, protocol: BenchProtocol) -> LatencyResult:
    device = transport.device
    model_name = f"model{artifact.suffix}"
    max_seconds = max(protocol.min_seconds * 10, device.step_timeout_s / 2)
    result = run_device_script(
        transport,
        "linux/runner.py",
        runner_argv(transport.remote_path(model_name), protocol, max_seconds),
        files={model_name: artifact},
    )
    if result.exit_status == NO_RUNTIME:
        raise UserInputError(
            f"device {device.name} ({transport.uri}): {result.stderr.strip()}; install it for "
            f"{transport.python} on the device, or point the lab file's `python` field at an "
            "interpreter that has it"
        )
    if result.exit_status != 0:
        raise LabInfrastructureError(
            f"{transport.uri}: the runner failed (exit status {result.exit_status}): "
            f"{result.stderr.strip()[-2000:] or result.stdout[-500:]}"
        )
    return from_runner(json_document(result, transport.uri, "the runner"), transport, protocol)


def from_runner(document: dict, transport: Transport, protocol: BenchProtocol) -> LatencyResult:
    """The runner's JSON as a LatencyResult; percentiles recomputed here from the samples."""
    from edgedistill.lab.host_bench import percentile

    try:
        timed = document["timed"]
        samples = [float(x) for x in timed["samples_ms"] or []]
        figures = (  # from the samples when shipped, else the runner's own (very many runs)
            {q: percentile(samples, n) for q, n in (("p50", 50), ("p90", 90), ("p99", 99))}
            if samples
            else {q: float(document["latency_ms"][q]) for q in ("p50", "p90", "p99")}
        )
        runtime = f"{document['runtime']} {document['runtime_version']}"
        if document.get("runtime_detail"):
            runtime += f" {document['runtime_detail']}"
        return LatencyResult(
            **figures,
            mean=float(timed["sum_ms"]) / int(timed["runs"]),
            runs=int(document["timed"]["runs"]),
            seconds=float(document["timed"]["seconds"]),
            threads=int(document["threads"]),
            runtime=runtime,
            measured_on=transport.uri,
            samples_ms=samples,
            target=transport.device.name,
            warmup_runs=int(document["warmup"]["runs"]),
            warmup_seconds=float(document["warmup"]["seconds"]),
            init_ms=float(document["init_ms"]),
            peak_memory_mb=document.get("peak_rss_mb"),
            extra={"system": document.get("system", {})},
            device_state={"before": document["state_before"], "after": document["state_after"]},
            raw={
                "model_sha256": document["model"]["sha256"],
                "audit_outputs": document["audit"]["outputs"],
            },
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise LabInfrastructureError(
            f"{transport.uri}: the runner's JSON is not what this edgedistill expects ({exc!r}); "
            "is the device running an older runner?"
        ) from None
