"""Lab platforms: every transport reaches one, and each says what it times and what it needs."""

from __future__ import annotations

import pytest

from edgedistill.lab.check import DeviceCheck, judge_runtime
from edgedistill.lab.platforms import PLATFORMS, platform_for
from edgedistill.lab.platforms.android import AndroidPlatform
from edgedistill.lab.platforms.linux import LinuxPlatform
from edgedistill.lab.transports import TRANSPORTS
from edgedistill.lab.transports.adb import AdbDevice
from edgedistill.profiles import load_profile, shipped_profile_names


def test_the_platform_registry_covers_every_platform_a_transport_can_report():
    reported = {name: TRANSPORTS.get(name).Device.platform for name in TRANSPORTS}
    assert reported == {"adb": "android", "local": "linux", "ssh": "linux"}
    for transport, platform in reported.items():
        assert platform in PLATFORMS, f"transport {transport} reports unknown platform {platform}"


def test_each_platform_times_the_formats_its_runtimes_run():
    assert set(PLATFORMS.get("linux").times) == {"onnx", "tflite", "tensorrt"}
    assert set(PLATFORMS.get("android").times) == {"tflite"}


REACHABLE = [n for n in shipped_profile_names() if load_profile(n).lab.transport in TRANSPORTS]


@pytest.mark.parametrize("name", REACHABLE)
def test_every_profile_a_transport_reaches_has_a_runtime_its_platform_can_provide(name):
    profile = load_profile(name)
    platform = PLATFORMS.get(TRANSPORTS.get(profile.lab.transport).Device.platform)
    assert set(profile.runtimes) & set(platform.runtime_needs), name


def test_a_device_is_ready_only_with_a_runtime_of_its_profile_on_its_platform():
    check = DeviceCheck("pi", "ssh", "ssh://pi@pi:22", "rpi5", reachable=True)
    check.runtimes = {"onnxruntime": None, "tflite_runtime": "2.14.0"}
    judge_runtime(check, load_profile("rpi5"), LinuxPlatform())
    assert check.ready and not check.notes
    phone = DeviceCheck("p", "adb", "adb://A1", "pixel-8", reachable=True)
    phone.runtimes = {"benchmark_model": None}
    judge_runtime(phone, load_profile("pixel-8"), AndroidPlatform())
    assert not phone.ready and "none of pixel-8's runtimes (tflite)" in phone.notes[0]


def test_android_device_state_is_read_from_the_wrapper_lines():
    output = "\n".join(
        [
            "edgedistill-state before sysfs cpu0/cpufreq/scaling_governor schedutil",
            "edgedistill-state before sysfs cpu0/cpufreq/scaling_cur_freq 1800000",
            "edgedistill-state before thermal_zone cpu-0-0 41000",
            "edgedistill-state after dumpsys Thermal Status: 2",
            "count=50 avg=900",
        ]
    )
    state = AndroidPlatform().device_state(output)
    assert state["before"]["governors"] == {"cpu0": "schedutil"}
    assert state["before"]["freq_mhz"] == {"cpu0": 1800.0}
    assert state["before"]["temps_c"] == {"cpu-0-0": 41.0}
    assert state["after"]["thermal_status"] == 2


def test_linux_device_state_is_read_from_the_runner_json():
    platform = LinuxPlatform()
    assert platform.device_state('{"state_before": {"a": 1}, "state_after": {"a": 2}}') == {
        "before": {"a": 1},
        "after": {"a": 2},
    }
    assert platform.device_state('noise\n{"state": {"temps_c": {}}}') == {"now": {"temps_c": {}}}
    assert platform.device_state("not json") == {}


def test_platform_for_a_lab_device_follows_its_transport():
    phone = AdbDevice.model_validate(
        {"name": "p", "profile": "pixel-8", "transport": "adb", "serial": "A1"}
    )
    assert isinstance(platform_for(phone), AndroidPlatform)
