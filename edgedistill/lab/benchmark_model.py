"""Read TFLite / LiteRT `benchmark_model` output: timings, memory, and what the delegate did.

The tool prints (tensorflow/lite/tools/benchmark, benchmark_model.cc and
benchmark_tflite_model.cc; LiteRT keeps the format):

    Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if ...
    count=9 first=87112 curr=51629 min=51629 max=87112 avg=58147.4 std=11478 p5=... median=...
    Running benchmark for at least 50 iterations and at least 1 seconds but terminate if ...
    count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=... median=...
    Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, ...
    Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961

(all times in microseconds), and for a delegate either "Explicitly applied GPU delegate, and the
model graph will be completely|partially executed by the delegate" or "Though GPU delegate is
explicitly applied, the model graph will not be executed by the delegate". It reports p5, the
median and p95 but no p90 or p99, and no per-run samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_RUNNING = re.compile(
    r"Running benchmark for at least (\d+) iterations and at least ([\d.]+) seconds"
)
_STATS = re.compile(r"(?:^|\s)count=(\d+)((?:\s+\w+=[-\d.e+]+)*)")
_PAIR = re.compile(r"(\w+)=([-\d.e+]+)")
_TIMINGS = re.compile(
    r"Inference timings in us: Init: ([\d.e+]+), First inference: ([\d.e+]+), "
    r"Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)"
)
_MEMORY = re.compile(
    r"(?:Memory footprint delta from the start of the tool|Peak memory "
    r"footprint) \(MB\): init=([\d.e+]+) overall=([\d.e+]+)"
)
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: ([\d.e+]+)")
_APPLIED = re.compile(
    r"Explicitly applied (\S+) delegate, and the model graph will be (completely|partially) "
    r"executed by the delegate"
)
_NOT_APPLIED = re.compile(
    r"Though (\S+) delegate is explicitly applied, the model graph will not be executed"
)
_REPLACED = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\)")


@dataclass
class Stats:
    """One `count=... avg=...` line, in microseconds."""

    count: int
    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> float | None:
        return self.values.get(key)


@dataclass
class BenchmarkModelReport:
    warmup: Stats | None = None
    timed: Stats | None = None
    requested: list[tuple[int, float]] = field(default_factory=list)  # (runs, seconds) asked
    init_us: float | None = None
    first_inference_us: float | None = None
    inference_avg_us: float | None = None
    memory_mb: float | None = None
    delegate: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def parse(text: str) -> BenchmarkModelReport:
    report = BenchmarkModelReport()
    stats: list[Stats] = []
    for line in text.splitlines():
        if running := _RUNNING.search(line):
            report.requested.append((int(running.group(1)), float(running.group(2))))
        elif (found := _STATS.search(line)) and "=" in found.group(2):
            values = {key: float(value) for key, value in _PAIR.findall(found.group(2))}
            stats.append(Stats(int(found.group(1)), values))
        elif timings := _TIMINGS.search(line):
            report.init_us, report.first_inference_us = float(timings[1]), float(timings[2])
            report.inference_avg_us = float(timings[4])
        elif memory := _MEMORY.search(line):
            report.memory_mb = float(memory.group(2))
        elif peak := _PEAK.search(line):
            report.memory_mb = float(peak.group(1))
        elif applied := _APPLIED.search(line):
            extent = "fully" if applied.group(2) == "completely" else "partially"
            report.delegate.update(name=applied.group(1), applied=extent)
        elif not_applied := _NOT_APPLIED.search(line):
            report.delegate.update(name=not_applied.group(1), applied="not")
        elif replaced := _REPLACED.search(line):
            report.delegate.update(nodes=f"{replaced.group(1)} of {replaced.group(2)}")
        elif re.search(r"\b(ERROR|Failed|failed)\b", line):
            report.errors.append(line.strip())
    if stats:
        report.timed = stats[-1]
        report.warmup = stats[-2] if len(stats) > 1 else None
    return report
