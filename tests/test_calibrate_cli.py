"""`edgedistill calibrate` as a user runs it: on a lab device over a real sshd, with an overlay."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import invoke, run_cli
from tests.lab_fixtures import running_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


@pytest.mark.slow  # 11 candidates timed over ssh (~90 s); CI times over ssh in the lab fits
def test_calibrate_over_ssh_stores_provenance_and_exports_a_profile(sshd, tmp_path):
    lab = sshd.write_lab(tmp_path / "devices.yaml", sshd.device("loopback"))
    overlay = tmp_path / "host-lab.yaml"
    env = {"EDGEDISTILL_DATA_DIR": str(tmp_path / "data")}
    result = run_cli(
        "calibrate",
        "--device",
        "host-cpu",
        "--lab",
        str(lab),
        "--target",
        "loopback",
        "--samples",
        "11",
        "--export-profile",
        str(overlay),
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["provenance"]["measured_on"].startswith("ssh://")
    assert document["fit_error"] is not None and len(document["coefficients"]) == 10
    assert document["channel_block"] in (1, 4, 8, 16, 32)
    shared = yaml.safe_load(overlay.read_text())
    assert shared["latency"]["calibrated"] is True
    assert shared["latency"]["fitted"][0]["coefficients"] == document["coefficients"]
    check = run_cli("profiles", "validate", str(overlay))
    assert check.returncode == 0, check.stderr


def test_calibrate_refuses_a_remote_device_without_a_lab_file():
    result = invoke("calibrate", "--device", "rpi5")
    assert result.returncode == 2 and "--lab" in result.stderr
    assert "Traceback" not in result.stderr


def test_calibrate_refuses_a_device_no_transport_reaches():
    result = invoke("calibrate", "--device", "iphone-15-pro")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "iphone-15-pro" in result.stderr and "no transport" in result.stderr


def test_calibrate_refuses_too_few_samples():
    result = invoke("calibrate", "--device", "host-cpu", "--samples", "3")
    assert result.returncode == 2 and "--samples" in result.stderr
    assert "Traceback" not in result.stderr
