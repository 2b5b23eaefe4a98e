"""`lab check`: is each device reachable, what runtimes does it have, how much disk, how hot.

Every device is probed in parallel over its transport (the linux runner's `probe`, or the
Android wrapper's `--probe`); a device that cannot be reached is reported, not raised.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from edgedistill.errors import EdgeDistillError
from edgedistill.lab.device_script import json_document, run_device_script
from edgedistill.lab.inventory import DeviceEntry
from edgedistill.lab.targets import target_file
from edgedistill.lab.transports import Transport

# Which probe findings let a device run a profile's runtime.
RUNTIME_NEEDS = {
    "onnxruntime": ("onnxruntime",),
    "tflite": ("ai_edge_litert", "tflite_runtime", "benchmark_model"),
    "tensorrt": ("tensorrt", "trtexec"),
    "edgetpu": ("benchmark_model",),
}


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
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_devices(devices: list[DeviceEntry]) -> list[DeviceCheck]:
    from edgedistill.lab.pool import run_on_devices

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
        _judge_profile(check, device)
        checks.append(check)
    return checks


def _judge_profile(check: DeviceCheck, device: DeviceEntry) -> None:
    from edgedistill.profiles import load_profile

    try:
        profile = load_profile(device.profile, flag=f"device {device.name}: field profile")
    except EdgeDistillError as exc:
        check.ready = False
        check.notes.append(str(exc))
        return
    judge_runtime(check, profile)


def judge_runtime(check: DeviceCheck, profile: Any) -> None:
    """Ready: reachable, probed without error, and one of the profile's runtimes is there."""
    usable = [
        runtime
        for runtime in profile.runtimes
        if any(check.runtimes.get(need) for need in RUNTIME_NEEDS.get(runtime, (runtime,)))
    ]
    check.ready = check.reachable and check.error is None and bool(usable)
    if check.reachable and not usable:
        check.notes.append(
            f"none of {profile.name}'s runtimes ({', '.join(profile.runtimes)}) found on the device"
        )


def probe_device(transport: Transport) -> DeviceCheck:
    """A pool job: what this device has and how it is doing."""
    device = transport.device
    check = DeviceCheck(device.name, device.transport, transport.uri, device.profile)
    check.reachable = True
    PROBES[transport.platform](transport, check)
    return check


def _probe_linux(transport: Transport, check: DeviceCheck) -> None:
    assert transport.session_dir is not None
    result = run_device_script(
        transport, "linux/runner.py", ["probe", "--workdir", transport.session_dir], idempotent=True
    )
    if result.exit_status != 0:
        check.error = f"{transport.python} cannot run the runner: {result.stderr.strip()[-500:]}"
        return
    document = json_document(result, transport.uri, "the runner probe")
    system = document.get("system", {})
    check.system = (
        f"{system.get('platform')}, {system.get('cpu_count')} CPUs, Python {system.get('python')}"
    )
    check.runtimes = dict(document.get("runtimes", {}))
    device = transport.device
    for tool in ("benchmark_model", "trtexec"):
        path = getattr(device, tool)
        if path:
            found = transport.run(["sh", "-c", 'command -v "$1"', "sh", path], idempotent=True)
            check.runtimes[tool] = path if found.exit_status == 0 else None
    check.free_disk_mb = document.get("free_disk_mb")
    check.state = document.get("state", {})


def _probe_android(transport: Transport, check: DeviceCheck) -> None:
    from edgedistill.lab.android_bench import device_state

    assert transport.session_dir is not None
    wrapper = transport.push(target_file("android/bench.sh"), "bench.sh")
    argv = ["sh", wrapper, "--probe", transport.session_dir, transport.device.benchmark_model or ""]
    result = transport.run(argv, idempotent=True)
    found = dict(
        line.split(" ", 2)[1:]
        for line in result.stdout.splitlines()
        if line.startswith("edgedistill-probe ") and line.count(" ") >= 2
    )
    check.system = f"Android {found.get('android', '?')} ({found.get('model', '?')})"
    check.runtimes = {
        "benchmark_model": transport.device.benchmark_model if "benchmark_model" in found else None
    }
    df = found.get("df", "").split()
    if len(df) >= 4 and df[3].isdigit():
        check.free_disk_mb = int(df[3]) / 1024.0
    check.state = device_state(result.stdout).get("now", {})


PROBES = {"linux": _probe_linux, "android": _probe_android}


def checks_json(checks: list[DeviceCheck]) -> str:
    return json.dumps([check.to_dict() for check in checks], indent=2)
