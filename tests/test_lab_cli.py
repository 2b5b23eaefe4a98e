"""`edgedistill lab check` and `bench --lab` as a user runs them, against a real local sshd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.lab_fixtures import free_port, running_sshd, tiny_onnx


def flat(text: str) -> str:
    """The CLI wraps long messages at the terminal width; compare without the wrapping."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


@pytest.fixture(scope="module")
def lab_file(sshd, tmp_path_factory) -> Path:
    return sshd.write_lab(tmp_path_factory.mktemp("lab") / "devices.yaml", sshd.device("loopback"))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx")


def test_lab_check_reports_a_reachable_device_with_its_runtimes(lab_file, sshd):
    result = run_cli("lab", "check", str(lab_file))
    assert result.returncode == 0, result.stderr
    assert f"loopback  ssh://{sshd.user}@127.0.0.1:{sshd.port}" in result.stdout
    for row in ("reachable", "runtimes", "free disk", "CPU governor", "CPU clock", "temperature"):
        assert row in result.stdout
    assert "onnxruntime" in result.stdout
    assert "Traceback" not in result.stderr


def test_lab_check_json_lists_every_device(lab_file):
    result = run_cli("lab", "check", str(lab_file), "--json")
    assert result.returncode == 0, result.stderr
    (device,) = json.loads(result.stdout)["devices"]
    assert device["reachable"] and device["ready"] and device["runtimes"]["onnxruntime"]
    assert device["free_disk_mb"] > 0 and "freq_mhz" in device["state"]
    assert device["upload"] == "sftp"


def test_lab_check_says_which_device_is_unreachable_and_exits_1(sshd, tmp_path):
    lab = sshd.write_lab(
        tmp_path / "devices.yaml",
        sshd.device("loopback"),
        sshd.device("gone", port=free_port(), retries=0, connect_timeout_s=3),
    )
    result = run_cli("lab", "check", str(lab))
    assert result.returncode == 1
    assert "gone" in result.stdout and "NO: ssh://" in result.stdout
    assert "not ready: gone" in result.stderr


def test_lab_check_shows_a_refused_host_key_with_its_fingerprint(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    lab = sshd.write_lab(tmp_path / "devices.yaml", sshd.device(known_hosts=str(empty)))
    result = run_cli("lab", "check", str(lab), "--json")
    assert result.returncode == 1
    (device,) = json.loads(result.stdout)["devices"]
    assert not device["reachable"]
    assert "unknown host key refused" in device["error"]
    assert sshd.host_fingerprint in device["error"]


def test_lab_check_refuses_an_invalid_lab_file_naming_the_fields(tmp_path):
    lab = tmp_path / "devices.yaml"
    lab.write_text(
        yaml.safe_dump(
            {"devices": [{"name": "pi", "profile": "rpi5", "transport": "ssh", "port": 0}]}
        )
    )
    result = run_cli("lab", "check", str(lab))
    assert result.returncode == 2
    for field in ("field host", "field port", "field user"):
        assert field in flat(result.stderr)
    assert "Traceback" not in flat(result.stderr)
    lab.write_text(yaml.safe_dump({"devices": [{"name": "p", "profile": "x", "transport": "usb"}]}))
    result = run_cli("lab", "check", str(lab))
    assert result.returncode == 2 and "unknown lab transport 'usb'" in flat(result.stderr)


def test_lab_check_refuses_an_unknown_profile_before_contacting_any_device(sshd, tmp_path):
    lab = sshd.write_lab(
        tmp_path / "devices.yaml",
        sshd.device("loopback"),
        sshd.device("board", profile="rpi55", port=free_port(), retries=0, connect_timeout_s=60),
    )
    result = run_cli("lab", "check", str(lab), "--json")
    said = flat(result.stderr)
    assert result.returncode == 2, said
    assert f"{lab}: device board: field profile: unknown device 'rpi55'" in said
    assert "did you mean rpi5" in said and "Traceback" not in said
    assert result.stdout == ""  # nothing probed, nothing reported


def test_bench_on_a_lab_device_writes_measured_on_as_an_ssh_uri(lab_file, model, sshd):
    result = run_cli("bench", str(model), "--lab", str(lab_file), "--target", "loopback", "--json")
    assert result.returncode == 0, result.stderr
    (measured,) = json.loads(result.stdout)["results"]
    assert measured["measured_on"] == f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    assert measured["audit"] == "passed" and measured["validity"] in ("valid", "unverified")
    assert measured["runs"] >= 50 and measured["seconds"] >= 1.0


def test_bench_refuses_half_given_lab_flags_and_unknown_targets(lab_file, model):
    result = run_cli("bench", str(model), "--target", "loopback")
    assert result.returncode == 2 and "--target: needs --lab" in flat(result.stderr)
    result = run_cli("bench", str(model), "--lab", str(lab_file))
    assert result.returncode == 2 and "name the device(s) with --target (loopback)" in flat(
        result.stderr
    )
    result = run_cli("bench", str(model), "--lab", str(lab_file), "--target", "loopbak")
    assert result.returncode == 2 and "did you mean loopback" in flat(result.stderr)
    result = run_cli(
        "bench", str(model), "--lab", str(lab_file), "--target", "loopback", "--device", "rpi5"
    )
    assert result.returncode == 2 and "its profile in" in flat(result.stderr)
