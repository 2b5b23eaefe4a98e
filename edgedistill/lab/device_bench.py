"""Device-side benchmarks by platform: the linux runner (ssh, local) or benchmark_model (adb).

Each platform registers one function `bench(transport, artifact, protocol) -> LatencyResult`
(a raw measurement: validity and audit are applied by `edgedistill.lab.measure`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgedistill.lab.host_bench import BenchProtocol, LatencyResult
from edgedistill.lab.transports import Transport
from edgedistill.registry import Registry

DeviceBench = Callable[[Transport, Path, BenchProtocol], LatencyResult]
DEVICE_BENCHES: Registry[DeviceBench] = Registry("device benchmark platform")


def device_bench(platform: str) -> DeviceBench:
    from edgedistill.lab import android_bench, linux_bench  # noqa: F401  (register themselves)

    return DEVICE_BENCHES.get(platform)
