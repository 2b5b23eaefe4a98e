"""`lab check`: is each device reachable, what runtimes does it have, how much disk, how hot.

Every device is probed in parallel over its transport by its platform's probe (the linux
runner's `probe`, or the Android wrapper's `--probe`); a device that cannot be reached is
reported, not raised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgedistill.errors import EdgeDistillError
from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.inventory import device_profiles
from edgedistill.lab.platforms import Platform, platform_for
from edgedistill.lab.pool import run_on_devices
from edgedistill.lab.transports import Transport
from edgedistill.profiles import DeviceProfile


@dataclass
class DeviceCheck:
    name: str
    transport: str
    uri: str
    profile: str
    reachable: bool = False
    ready: bool = False
    error: str | None = None
    system: str | None = None
    runtimes: dict[str, str | None] = field(default_factory=dict)
    free_disk_mb: float | None = None
    state: dict[str, Any] = field(default_factory=dict)
    upload: str | None = None  # how files reached it: sftp, exec channel, adb push, ...
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_devices(lab: Path, devices: list[DeviceEntry]) -> list[DeviceCheck]:
    """Probe every device of the lab file `lab`; their profiles are read first, so an unknown
    one is an invalid lab file (exit 2) before any device is contacted."""
    profiles = {d.name: p for d, p in zip(devices, device_profiles(lab, devices), strict=True)}
    outcomes = run_on_devices(devices, [probe_device])
    checks = []
    for outcome in outcomes:
        device = outcome.device
        if outcome.error is not None:
            check = DeviceCheck(device.name, device.transport, device.uri, device.profile)
            check.error = (
                str(outcome.error)
                if isinstance(outcome.error, EdgeDistillError)
                else (f"{type(outcome.error).__name__}: {outcome.error}")
            )
        else:
            check = outcome.results[0]
        judge_runtime(check, profiles[device.name], platform_for(device))
        checks.append(check)
    return checks


def judge_runtime(check: DeviceCheck, profile: DeviceProfile, platform: Platform) -> None:
    """Ready: reachable, probed without error, and one of the profile's runtimes is there."""
    usable = platform.usable_runtimes(profile.runtimes, check.runtimes)
    check.ready = check.reachable and check.error is None and bool(usable)
    if check.reachable and not usable:
        check.notes.append(
            f"none of {profile.name}'s runtimes ({', '.join(profile.runtimes)}) found on the device"
        )


def probe_device(transport: Transport) -> DeviceCheck:
    """A pool job: what this device has and how it is doing."""
    device = transport.device
    found = platform_for(device).probe(transport)
    return DeviceCheck(
        device.name,
        device.transport,
        transport.uri,
        device.profile,
        reachable=True,
        error=found.error,
        system=found.system,
        runtimes=found.runtimes,
        free_disk_mb=found.free_disk_mb,
        state=found.state,
        upload=transport.upload_method,
    )
