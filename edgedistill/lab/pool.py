"""Several devices at once: each device runs its jobs in order on one connection, in parallel.

One job at a time per device (a second model timed beside the first would skew both); the lab
file's `cooldown_s` is waited before every job after a device's first. A device that fails
reports its error; the other devices finish their jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.transports import Transport, open_transport

log = logging.getLogger(__name__)
T = TypeVar("T")
Job = Callable[[Transport], T]


@dataclass
class DeviceOutcome(Generic[T]):
    device: DeviceEntry
    results: list[T] = field(default_factory=list)
    error: BaseException | None = None


def _run_device(device: DeviceEntry, jobs: list[Job[T]]) -> DeviceOutcome[T]:
    outcome: DeviceOutcome[T] = DeviceOutcome(device)
    try:
        with open_transport(device) as transport:
            for index, job in enumerate(jobs):
                if index and device.cooldown_s:
                    log.info("%s: cooling down %g s", device.name, device.cooldown_s)
                    time.sleep(device.cooldown_s)
                outcome.results.append(job(transport))
    except Exception as exc:  # reported per device; the caller decides what it means
        outcome.error = exc
    return outcome


def run_on_devices(
    devices: list[DeviceEntry],
    jobs: list[Job[T]] | Callable[[DeviceEntry], list[Job[T]]],
) -> list[DeviceOutcome[T]]:
    """Run the jobs (the same list for all, or a list per device) on every device: devices in
    parallel, jobs in order on each."""
    jobs_for = jobs if callable(jobs) else (lambda device: jobs)
    if len(devices) == 1:
        return [_run_device(devices[0], jobs_for(devices[0]))]
    with ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="lab") as pool:
        futures = [pool.submit(_run_device, device, jobs_for(device)) for device in devices]
        return [future.result() for future in futures]
