"""Linux devices (ssh, local): the device-side runner (targets/linux/runner.py) times and probes.

The runner times ONNX (onnxruntime), TFLite (LiteRT / tflite_runtime, XNNPACK) and TensorRT
engines (tensorrt with CUDA, else trtexec). An engine is built on the device first by
`targets/linux/trt_build.py`, cached under the device's workdir by ONNX sha256, precision and
TensorRT version. The runner prints one JSON document: per-run samples (percentiles are
recomputed here), warm-up, init time, peak memory, runtime and version, the device state before
and after (GPU clock, nvpmodel and tegrastats on a Jetson), and the outputs for the audit's
fixed inputs. `runner.py probe` prints the runtimes, free disk and state now.
"""

from __future__ import annotations

import json
from typing import Any

from edgedistill.errors import UserInputError
from edgedistill.lab.device_script import json_document, run_device_script
from edgedistill.lab.devices import LinuxDevice
from edgedistill.lab.errors import LabInfrastructureError
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult, percentile
from edgedistill.lab.platforms._base import PLATFORMS, Platform, Probe, device_as
from edgedistill.lab.timing import TimedArtifact
from edgedistill.lab.transports import Transport

AUDIT_INPUTS = 3
NO_RUNTIME = 3  # the runner's exit status when the device lacks the model's runtime
ENGINE_CACHE = "edgedistill-engines"  # under the device's workdir: kept between runs
BUILD_FAILED = 1  # trt_build.py: the engine could not be built


def runner_argv(
    remote_model: str, protocol: BenchProtocol, max_seconds: float, trtexec: str | None = None
) -> list[str]:
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
        *(["--trtexec", trtexec] if trtexec else []),
    ]


@PLATFORMS.register("linux")
class LinuxPlatform(Platform):
    artifact_format = "onnx"
    times = {
        "onnx": ("onnxruntime",),
        "tflite": ("ai_edge_litert", "tflite_runtime"),
        "tensorrt": ("tensorrt", "trtexec"),
    }
    runtime_needs = {
        "onnxruntime": ("onnxruntime",),
        "tflite": ("ai_edge_litert", "tflite_runtime", "benchmark_model"),
        "tensorrt": ("tensorrt", "trtexec"),
        "edgetpu": ("benchmark_model",),
    }

    def bench(
        self, transport: Transport, artifact: TimedArtifact, protocol: BenchProtocol
    ) -> LatencyResult:
        device = device_as(transport, LinuxDevice)
        max_seconds = max(protocol.min_seconds * 10, device.step_timeout_s / 2)
        build: dict[str, Any] = {}
        if artifact.built_on_device:
            build = build_engine(transport, artifact)
            remote, files = str(build["engine"]), {}
        else:
            name = f"model{artifact.path.suffix}"
            remote, files = transport.remote_path(name), {name: artifact.path}
        result = run_device_script(
            transport,
            "linux/runner.py",
            runner_argv(remote, protocol, max_seconds, device.trtexec),
            files=files,
        )
        if result.exit_status == NO_RUNTIME:
            raise UserInputError(
                f"device {device.name} ({transport.uri}): {result.stderr.strip()}; install it "
                f"for {transport.python} on the device, or point the lab file's `python` field "
                "at an interpreter that has it"
            )
        if result.exit_status != 0:
            raise LabInfrastructureError(
                f"{transport.uri}: the runner failed (exit status {result.exit_status}): "
                f"{result.stderr.strip()[-2000:] or result.stdout[-500:]}"
            )
        latency = from_runner(json_document(result, transport.uri, "the runner"), transport)
        latency.format, latency.precision = artifact.format, artifact.precision
        latency.artifact_sha256 = latency.raw["model_sha256"]
        if build:
            latency.extra["engine_build"] = {
                key: build.get(key)
                for key in ("tensorrt", "builder", "cached", "seconds", "onnx_sha256", "sha256")
            }
            latency.raw["expected_sha256"] = build["sha256"]
        return latency

    def probe(self, transport: Transport) -> Probe:
        assert transport.session_dir is not None
        argv = ["probe", "--workdir", transport.session_dir]
        result = run_device_script(transport, "linux/runner.py", argv, idempotent=True)
        if result.exit_status != 0:
            return Probe(
                error=f"{transport.python} cannot run the runner: {result.stderr.strip()[-500:]}"
            )
        document = json_document(result, transport.uri, "the runner probe")
        system = document.get("system", {})
        runtimes = dict(document.get("runtimes", {}))
        device = device_as(transport, LinuxDevice)
        tools = {"benchmark_model": device.benchmark_model, "trtexec": device.trtexec}
        for tool, path in tools.items():  # lab-file paths: are they there?
            if path:
                found = transport.run(["sh", "-c", 'command -v "$1"', "sh", path], idempotent=True)
                runtimes[tool] = path if found.exit_status == 0 else None
        return Probe(
            system=(
                f"{system.get('platform')}, {system.get('cpu_count')} CPUs, "
                f"Python {system.get('python')}"
            ),
            runtimes=runtimes,
            free_disk_mb=document.get("free_disk_mb"),
            state=_phases(document).get("now", {}),
        )

    def device_state(self, output: str) -> dict[str, dict[str, Any]]:
        lines = [line for line in output.splitlines() if line.strip()]
        try:
            document = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            return {}
        return _phases(document) if isinstance(document, dict) else {}


def build_engine(transport: Transport, artifact: TimedArtifact) -> dict[str, Any]:
    """Build (or take from the device's cache) the TensorRT engine of `artifact`'s ONNX file;
    the build script's JSON document (engine path on the device, its sha256, TensorRT version)."""
    device = device_as(transport, LinuxDevice)
    cache = f"{device.workdir.rstrip('/')}/{ENGINE_CACHE}"
    argv = ["--onnx", transport.remote_path("model.onnx"), "--cache-dir", cache]
    argv += ["--precision", artifact.precision or "fp32"]
    if device.trtexec:
        argv += ["--trtexec", device.trtexec]
    result = run_device_script(
        transport, "linux/trt_build.py", argv, files={"model.onnx": artifact.path}
    )
    document = json_document(result, transport.uri, "the TensorRT engine build")
    if result.exit_status == 0 and document.get("ok"):
        return document
    error = document.get("error") or result.stderr.strip()[-1000:]
    if "neither the TensorRT Python module nor trtexec" in str(error):
        raise UserInputError(
            f"device {device.name} ({transport.uri}): {error}; or set the lab file's `trtexec` "
            "field to its path"
        )
    raise LabInfrastructureError(
        f"{transport.uri}: building the TensorRT {artifact.precision} engine from "
        f"{artifact.path.name} failed (exit status {result.exit_status}): {error}"
    )


def _phases(document: dict) -> dict[str, dict[str, Any]]:
    """The runner's state entries: `state_before`/`state_after` (bench), `state` (probe)."""
    keys = {"before": "state_before", "after": "state_after", "now": "state"}
    return {phase: document[key] for phase, key in keys.items() if key in document}


def from_runner(document: dict, transport: Transport) -> LatencyResult:
    """The runner's JSON as a LatencyResult; percentiles recomputed here from the samples."""
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
            runs=int(timed["runs"]),
            seconds=float(timed["seconds"]),
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
                "audit_outputs": document["audit"]["outputs"],  # None: the tool printed none
            },
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise LabInfrastructureError(
            f"{transport.uri}: the runner's JSON is not what this edgedistill expects ({exc!r}); "
            "is the device running an older runner?"
        ) from None
