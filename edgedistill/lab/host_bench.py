"""Latency on this host: onnxruntime at batch 1, fixed threads, warm-up then timed runs.

Protocol: warm up for at least `warmup_runs` runs and `warmup_s` seconds, then time at least
`runs` runs and `min_seconds` seconds; report p50/p90/p99 of the per-run wall times.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgedistill.hashing import sha256_file
from edgedistill.ort import onnx_session


@dataclass(frozen=True)
class BenchProtocol:
    threads: int = 1
    warmup_runs: int = 1
    warmup_s: float = 0.5
    runs: int = 50
    min_seconds: float = 1.0


LAB_FIELDS = (
    "format",
    "precision",
    "artifact_sha256",
    "deployed",
    "target",
    "warmup_runs",
    "warmup_seconds",
    "init_ms",
    "peak_memory_mb",
    "validity",
    "validity_reasons",
    "audit",
    "audit_detail",
    "extra",
)


@dataclass
class LatencyResult:
    p50: float
    p90: float | None  # None only where the tool reports no p90 (TFLite benchmark_model)
    p99: float | None
    mean: float
    runs: int
    seconds: float
    threads: int
    runtime: str
    measured_on: str = "host"
    samples_ms: list[float] = field(default_factory=list, repr=False)
    # What was timed: the file's format and precision, and its sha256 (an engine built on the
    # device: the engine's); deployed False when it stands in for the artifact that ships.
    format: str | None = None
    precision: str | None = None
    artifact_sha256: str | None = None
    deployed: bool | None = None
    # Lab measurements (edgedistill.lab) also say where, how and how far to trust them.
    target: str | None = None  # the device's name in the lab file
    warmup_runs: int | None = None
    warmup_seconds: float | None = None
    init_ms: float | None = None
    peak_memory_mb: float | None = None
    validity: str | None = None  # valid | unverified | invalid
    validity_reasons: list[str] = field(default_factory=list)
    audit: str | None = None  # passed | failed | skipped: device outputs vs the host's
    audit_detail: str | None = None
    extra: dict = field(default_factory=dict)  # tool-specific figures (p5, p95, delegate, ...)
    device_state: dict = field(default_factory=dict, repr=False)  # clocks, temperatures
    raw: dict = field(default_factory=dict, repr=False)  # the device tool's own report

    def summary(self) -> dict:
        """The figures without samples and device state; lab fields only when set."""
        data = asdict(self)
        data.pop("samples_ms")
        data.pop("device_state")
        data.pop("raw")
        for key in LAB_FIELDS:
            if data[key] in (None, [], {}):
                data.pop(key)
        return data


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def measure_onnx(path: Path, protocol: BenchProtocol = BenchProtocol()) -> LatencyResult:
    """Time one ONNX model on this host's CPU with onnxruntime."""
    import numpy as np
    import onnxruntime as ort

    session = onnx_session(path, protocol.threads)
    model_input = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in model_input.shape]
    if model_input.type == "tensor(int64)":  # token ids: any id not the padding costs the same
        values = np.ones(shape, dtype=np.int64)
    else:
        values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {model_input.name: values}
    run = session.run

    started = time.perf_counter()
    warm = 0
    while warm < protocol.warmup_runs or time.perf_counter() - started < protocol.warmup_s:
        run(None, feed)
        warm += 1

    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < protocol.runs or time.perf_counter() - started < protocol.min_seconds:
        t0 = time.perf_counter()
        run(None, feed)
        samples.append((time.perf_counter() - t0) * 1000.0)
    elapsed = time.perf_counter() - started
    return LatencyResult(
        p50=percentile(samples, 50),
        p90=percentile(samples, 90),
        p99=percentile(samples, 99),
        mean=float(np.mean(samples)),
        runs=len(samples),
        seconds=elapsed,
        threads=protocol.threads,
        runtime=f"onnxruntime {ort.__version__} CPUExecutionProvider",
        samples_ms=samples,
        format="onnx",
        artifact_sha256=sha256_file(path),
    )
