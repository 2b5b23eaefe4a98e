"""Platform: what runs models on one kind of device, and how to time, probe and read it.

A platform is the device-side software stack, whatever transport reaches it: the format it
times, its benchmark, its probe for `lab check`, which probe findings provide each profile
runtime, and how to read the device's clocks and temperatures from its tools' output. A device
entry names its platform (`DeviceEntry.platform`); each platform module registers one class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult
from edgedistill.lab.timing import TimedArtifact
from edgedistill.lab.transports import Transport
from edgedistill.registry import Registry


@dataclass
class Probe:
    """What a platform's probe found on a device; `error` when it was reached but failed."""

    system: str | None = None
    runtimes: dict[str, str | None] = field(default_factory=dict)  # finding -> version or path
    free_disk_mb: float | None = None
    state: dict[str, Any] = field(default_factory=dict)  # clocks, temperatures, now
    error: str | None = None


class Platform(ABC):
    """One device-side stack; stateless, so the registry holds one instance of each."""

    artifact_format: ClassVar[str]  # the format it times when told nothing else ("onnx")
    # format it can time -> the probe findings (runtimes entries) any one of which times it
    times: ClassVar[Mapping[str, tuple[str, ...]]]
    # profile runtime -> the probe findings (runtimes entries) any one of which provides it
    runtime_needs: ClassVar[Mapping[str, tuple[str, ...]]]

    @abstractmethod
    def bench(
        self, transport: Transport, artifact: TimedArtifact, protocol: BenchProtocol
    ) -> LatencyResult:
        """Time `artifact` on the device in its format (building it there first where that
        format is built on the device): a raw measurement (validity and audit come later)."""

    @abstractmethod
    def probe(self, transport: Transport) -> Probe:
        """What the device has (system, runtimes, free disk) and how it is doing now."""

    @abstractmethod
    def device_state(self, output: str) -> dict[str, dict[str, Any]]:
        """The device state its tools printed, by phase: `before`/`after` a run, `now` a probe."""

    def timing_runtime_missing(self, fmt: str, found: Mapping[str, Any]) -> bool:
        """True when the probe `found` none of what times `fmt` on this platform."""
        return not any(found.get(need) for need in self.times.get(fmt, ()))

    def usable_runtimes(self, runtimes: Iterable[str], found: Mapping[str, Any]) -> list[str]:
        """Those of `runtimes` (a profile's) that the probe `found` on this platform."""
        return [
            runtime
            for runtime in runtimes
            if any(found.get(need) for need in self.runtime_needs.get(runtime, ()))
        ]


PLATFORMS: Registry[Platform] = Registry("lab platform", instances=True)

D = TypeVar("D", bound=DeviceEntry)


def device_as(transport: Transport, kind: type[D]) -> D:
    """The transport's device entry, which a platform's code expects to be a `kind`."""
    device = transport.device
    if not isinstance(device, kind):
        raise TypeError(f"{transport.uri}: not a {kind.platform} device ({type(device).__name__})")
    return device
