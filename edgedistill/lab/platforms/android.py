"""Android devices (adb): TFLite's benchmark_model times .tflite, through targets/android/bench.sh.

The wrapper records CPU clocks and thermal state around the run; benchmark_model is given the
protocol's warm-up (runs and seconds), timed runs and seconds, threads and the lab file's
delegate. Its output is parsed (`edgedistill.lab.benchmark_model`): p50 is its median; it
reports no p90/p99 and no samples, so those stay empty and p5/p95/min/max go to `extra`.
`bench.sh --probe` reports the Android version, model, free disk and state for `lab check`.
"""

from __future__ import annotations

import re
from typing import Any

from edgedistill.errors import UserInputError
from edgedistill.hashing import sha256_file
from edgedistill.lab import benchmark_model
from edgedistill.lab.devices import AndroidDevice
from edgedistill.lab.errors import LabInfrastructureError
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult
from edgedistill.lab.platforms._base import PLATFORMS, Platform, Probe, device_as
from edgedistill.lab.targets import target_file
from edgedistill.lab.timing import TimedArtifact
from edgedistill.lab.transports import Transport

DELEGATE_FLAGS = {
    "none": ["--use_xnnpack=false"],
    "xnnpack": ["--use_xnnpack=true"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
}
_TEMPERATURE = re.compile(r"Temperature\{mValue=([-\d.]+), mType=\d+, mName=([^,]+),")
_THERMAL_STATUS = re.compile(r"Thermal Status: (\d+)")


def benchmark_argv(
    device: AndroidDevice, model: str, protocol: BenchProtocol, max_seconds: float
) -> list[str]:
    argv = [
        device.benchmark_model or "benchmark_model",
        f"--graph={model}",
        f"--num_threads={protocol.threads}",
        f"--warmup_runs={protocol.warmup_runs}",
        f"--warmup_min_secs={protocol.warmup_s}",
        f"--num_runs={protocol.runs}",
        f"--min_secs={protocol.min_seconds}",
        f"--max_secs={max_seconds}",
    ]
    return argv + DELEGATE_FLAGS.get(device.delegate or "", [])


@PLATFORMS.register("android")
class AndroidPlatform(Platform):
    artifact_format = "tflite"
    times = {"tflite": ("benchmark_model",)}
    runtime_needs = {"tflite": ("benchmark_model",)}

    def bench(
        self, transport: Transport, timed: TimedArtifact, protocol: BenchProtocol
    ) -> LatencyResult:
        device = device_as(transport, AndroidDevice)
        artifact = timed.path
        if artifact.suffix != ".tflite":
            raise UserInputError(
                f"device {device.name} ({transport.uri}): benchmark_model times .tflite models; "
                f"{artifact.name} is not one (export with --formats tflite)"
            )
        if not device.benchmark_model:
            raise UserInputError(
                f"device {device.name}: field benchmark_model: give the path of benchmark_model "
                "on the phone (e.g. /data/local/tmp/benchmark_model, pushed there once)"
            )
        pushed = transport.push_many(
            {"bench.sh": target_file("android/bench.sh"), "model.tflite": artifact}
        )
        max_seconds = max(protocol.min_seconds * 10, device.step_timeout_s / 2)
        argv = ["sh", pushed["bench.sh"]]
        argv += benchmark_argv(device, pushed["model.tflite"], protocol, max_seconds)
        result = transport.run(argv)
        report = benchmark_model.parse(result.stdout)
        if result.exit_status == 127 or (result.exit_status and "not found" in result.stdout):
            raise UserInputError(
                f"device {device.name}: field benchmark_model: {device.benchmark_model} cannot "
                f"be run on the device ({result.stdout.strip()[-300:]})"
            )
        if result.exit_status != 0 or report.timed is None:
            detail = "; ".join(report.errors) or (result.stdout + result.stderr).strip()[-1500:]
            raise LabInfrastructureError(
                f"{transport.uri}: benchmark_model failed (exit status {result.exit_status}): "
                f"{detail}"
            )
        latency = self._result(report, result.stdout, transport, protocol)
        latency.format, latency.precision = "tflite", timed.precision
        latency.artifact_sha256 = sha256_file(artifact)  # pushed, verified on the device
        return latency

    def probe(self, transport: Transport) -> Probe:
        device = device_as(transport, AndroidDevice)
        assert transport.session_dir is not None
        wrapper = transport.push(target_file("android/bench.sh"), "bench.sh")
        argv = ["sh", wrapper, "--probe", transport.session_dir, device.benchmark_model or ""]
        result = transport.run(argv, idempotent=True)
        found = dict(
            line.split(" ", 2)[1:]
            for line in result.stdout.splitlines()
            if line.startswith("edgedistill-probe ") and line.count(" ") >= 2
        )
        df = found.get("df", "").split()
        return Probe(
            system=f"Android {found.get('android', '?')} ({found.get('model', '?')})",
            runtimes={
                "benchmark_model": device.benchmark_model if "benchmark_model" in found else None
            },
            free_disk_mb=int(df[3]) / 1024.0 if len(df) >= 4 and df[3].isdigit() else None,
            state=self.device_state(result.stdout).get("now", {}),
        )

    def device_state(self, output: str) -> dict[str, dict[str, Any]]:
        """The wrapper's `edgedistill-state PHASE ...` lines as {before: {...}, after: {...}}."""
        phases: dict[str, dict[str, Any]] = {}
        for line in output.splitlines():
            parts = line.split(" ", 3)
            if len(parts) < 4 or parts[0] != "edgedistill-state":
                continue
            state = phases.setdefault(
                parts[1], {"governors": {}, "freq_mhz": {}, "max_freq_mhz": {}, "temps_c": {}}
            )
            _read_state_line(state, parts[2], parts[3])
        return phases

    def _result(
        self,
        report: benchmark_model.BenchmarkModelReport,
        output: str,
        transport: Transport,
        protocol: BenchProtocol,
    ) -> LatencyResult:
        timed, warmup = report.timed, report.warmup
        assert timed is not None
        median, average = timed.get("median"), timed.get("avg")
        if median is None or average is None:
            raise LabInfrastructureError(
                f"{transport.uri}: this benchmark_model prints no median; use a build from "
                "TensorFlow 2.13 or later, or LiteRT"
            )
        delegate = dict(report.delegate)
        requested = device_as(transport, AndroidDevice).delegate
        if requested and requested != "none":
            delegate["requested"] = requested
            delegate.setdefault("applied", "fully" if requested == "xnnpack" else "not")
        extra: dict[str, Any] = {
            key: value / 1000.0
            for key in ("p5", "p95", "min", "max", "std")
            if (value := timed.get(key)) is not None
        }
        extra["seconds_basis"] = "benchmark_model count x avg (it prints no wall time)"
        if delegate:
            extra["delegate"] = delegate
        return LatencyResult(
            p50=median / 1000.0,
            p90=None,
            p99=None,
            mean=average / 1000.0,
            runs=timed.count,
            seconds=timed.count * average / 1e6,
            threads=protocol.threads,
            runtime=f"TFLite benchmark_model ({requested or 'default'} delegate)",
            measured_on=transport.uri,
            target=transport.device.name,
            warmup_runs=warmup.count if warmup else 0,
            warmup_seconds=warmup.count * (warmup.get("avg") or 0.0) / 1e6 if warmup else 0.0,
            init_ms=report.init_us / 1000.0 if report.init_us is not None else None,
            peak_memory_mb=report.memory_mb,
            extra=extra,
            device_state=self.device_state(output),
            raw={"benchmark_model_output": output[-20000:]},
        )


def _read_state_line(state: dict[str, Any], kind: str, rest: str) -> None:
    """One `edgedistill-state` line (sysfs, thermal_zone or dumpsys) into a phase's state."""
    if kind == "sysfs":
        path, _, value = rest.partition(" ")
        cpu, name = path.split("/")[0], path.rsplit("/", 1)[-1]
        if name == "scaling_governor":
            state["governors"][cpu] = value
        elif value.isdigit():
            key = "freq_mhz" if name == "scaling_cur_freq" else "max_freq_mhz"
            state[key][cpu] = int(value) / 1000.0
    elif kind == "thermal_zone":
        zone, _, value = rest.rpartition(" ")
        if value.lstrip("-").isdigit():
            raw = int(value)
            state["temps_c"][zone] = raw / 1000.0 if abs(raw) >= 1000 else float(raw)
    elif kind == "dumpsys":
        if status := _THERMAL_STATUS.search(rest):
            state["thermal_status"] = int(status.group(1))
        elif temperature := _TEMPERATURE.search(rest):
            state["temps_c"][temperature.group(2)] = float(temperature.group(1))
