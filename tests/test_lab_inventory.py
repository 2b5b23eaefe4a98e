"""The lab file (devices.yaml): what it accepts, how it resolves paths, what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgedistill.errors import UserInputError
from edgedistill.lab.inventory import load_lab, select_targets


def write(tmp_path: Path, *devices: dict) -> Path:
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump({"devices": list(devices)}))
    return path


def ssh_device(tmp_path: Path, **overrides) -> dict:
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "id").write_text("key")
    (tmp_path / "known_hosts").write_text("")
    entry = {
        "name": "pi",
        "profile": "rpi5",
        "transport": "ssh",
        "host": "pi.lab",
        "user": "pi",
        "identity_file": "keys/id",
        "known_hosts": "known_hosts",
    }
    return {**entry, **overrides}


def test_paths_in_a_lab_file_are_relative_to_it(tmp_path):
    lab = load_lab(write(tmp_path, ssh_device(tmp_path, profile="boards/my-board.yaml")))
    device = lab.devices["pi"]
    assert device.identity_file == tmp_path / "keys" / "id"
    assert device.known_hosts == tmp_path / "known_hosts"
    assert device.profile == str(tmp_path / "boards" / "my-board.yaml")
    assert device.uri == "ssh://pi@pi.lab:22" and device.port == 22


def test_each_transport_brings_its_own_fields_and_defaults(tmp_path):
    lab = load_lab(
        write(
            tmp_path,
            {"name": "phone", "profile": "pixel-8", "transport": "adb", "serial": "ABC123"},
            {"name": "here", "profile": "host-cpu", "transport": "local"},
        )
    )
    assert lab.devices["phone"].uri == "adb://ABC123"
    assert lab.devices["phone"].workdir == "/data/local/tmp"
    assert lab.devices["here"].uri.startswith("local://")


def test_mistakes_are_refused_naming_device_and_field(tmp_path):
    path = write(
        tmp_path,
        ssh_device(tmp_path, identity_file="keys/missing", colour="red"),
        ssh_device(tmp_path, name="pi", workdir="tmp", env={"BAD-NAME": "1"}),
        {"name": "x", "profile": "rpi5", "transport": "ssj"},
    )
    with pytest.raises(UserInputError) as refused:
        load_lab(path)
    message = str(refused.value)
    assert "devices[0] (pi) field identity_file: Value error, file" in message
    assert "devices[0] (pi) field colour: Extra inputs are not permitted" in message
    assert "devices[1] (pi) field workdir" in message and "BAD-NAME" in message
    assert "devices[2] (x) field transport: unknown lab transport 'ssj'; did you mean ssh?" in (
        message
    )


def test_a_device_name_may_be_used_once(tmp_path):
    path = write(tmp_path, ssh_device(tmp_path), ssh_device(tmp_path))
    with pytest.raises(UserInputError, match="device name 'pi' is used twice"):
        load_lab(path)


def test_targets_must_use_the_profile_the_fit_is_for(tmp_path):
    path = write(tmp_path, ssh_device(tmp_path))
    assert [d.name for d in select_targets(path, "pi", "rpi5")] == ["pi"]
    with pytest.raises(UserInputError, match="its profile in .* is rpi5, not --device host-cpu"):
        select_targets(path, "pi", "host-cpu")
    with pytest.raises(UserInputError, match="no such device"):
        select_targets(path, "pi,nope", None)


def test_a_field_of_another_transport_is_refused_naming_file_and_field(tmp_path):
    path = write(
        tmp_path,
        ssh_device(tmp_path, serial="ABC123", delegate="gpu"),
        {"name": "phone", "profile": "pixel-8", "transport": "adb", "serial": "A1", "python": "py"},
    )
    with pytest.raises(UserInputError) as refused:
        load_lab(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: invalid lab file")
    assert "devices[0] (pi) field serial: Extra inputs are not permitted" in message
    assert "(serial is a field of adb devices, not of ssh ones)" in message
    assert "devices[0] (pi) field delegate: Extra inputs are not permitted" in message
    assert "devices[1] (phone) field python: Extra inputs are not permitted" in message
    assert "(python is a field of local and ssh devices, not of adb ones)" in message


def test_each_device_takes_the_fields_of_its_platform(tmp_path):
    lab = load_lab(
        write(
            tmp_path,
            ssh_device(tmp_path, python="/usr/bin/python3", trtexec="/usr/bin/trtexec"),
            {
                "name": "phone",
                "profile": "pixel-8",
                "transport": "adb",
                "serial": "A1",
                "benchmark_model": "/data/local/tmp/benchmark_model",
                "delegate": "xnnpack",
            },
        )
    )
    pi, phone = lab.devices["pi"], lab.devices["phone"]
    assert pi.platform == "linux" and pi.trtexec == "/usr/bin/trtexec"
    assert phone.platform == "android" and phone.delegate == "xnnpack"
    assert not hasattr(pi, "delegate") and not hasattr(phone, "python")
