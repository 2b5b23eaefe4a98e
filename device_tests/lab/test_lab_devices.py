"""The CI's lab checks (tests/test_lab_*.py) against real devices of a lab file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.transports import open_transport
from tests.lab_fixtures import hostile_strings, tiny_onnx

pytestmark = pytest.mark.device

LIST_NUL = 'for a; do printf "%s\\0" "$a"; done'  # argv back, NUL-separated: no python needed
LIST_DIR = 'for f in "$1"/* "$1"/.*; do [ -e "$f" ] && printf "%s\\0" "${f##*/}"; done; true'


def test_device_is_ready(lab_device):
    from edgedistill.lab.check import check_devices

    (check,) = check_devices([lab_device])
    assert check.reachable, check.error
    assert check.ready, check.notes


def test_push_run_pull_round_trip_is_verified_by_sha256(lab_device, tmp_path):
    source = tmp_path / "payload.bin"
    source.write_bytes(os.urandom(3_000_000))
    with open_transport(lab_device) as device:
        remote = device.push(source, "payload.bin")
        assert device.sha256(remote) == hashlib.sha256(source.read_bytes()).hexdigest()
        back = device.pull(remote, tmp_path / "back.bin")
        session = device.session_dir
    assert back.read_bytes() == source.read_bytes()
    with open_transport(lab_device) as device:
        gone = device.run(["sh", "-c", 'test ! -e "$1"', "sh", session])
    assert gone.exit_status == 0, "the run directory is removed on close"


def test_hostile_arguments_and_names_arrive_unchanged(lab_device, tmp_path):
    canary = f"edgedistill-canary-{os.getpid()}"
    hostile = hostile_strings(canary)
    source = tmp_path / "small.bin"
    source.write_bytes(b"x")
    with open_transport(lab_device) as device:
        echoed = device.run(["sh", "-c", LIST_NUL, "sh", *hostile])
        assert echoed.stdout.split("\0")[:-1] == hostile
        names = [s for s in hostile if "/" not in s]
        device.push_many(dict.fromkeys(names, source))
        listed = device.run(["sh", "-c", LIST_DIR, "sh", device.session_dir])
        assert sorted(n for n in listed.stdout.split("\0")[:-1] if n not in (".", "..")) == sorted(
            names
        )
        home = device.run(["sh", "-c", 'ls -a "$HOME" "$PWD"']).stdout
    assert canary not in home, "no hostile string ran as a command"


def test_benchmark_is_valid_and_passes_the_audit(lab_device, tmp_path):
    from edgedistill.lab.measure import measure_on_lab

    if lab_device.platform == "android":
        model = os.environ.get("EDGEDISTILL_LAB_TFLITE")
        if not model:
            pytest.skip("set EDGEDISTILL_LAB_TFLITE=model.tflite to time a model on a phone")
        artifact = Path(model)
    else:
        artifact = tiny_onnx(tmp_path / "tiny.onnx")
    (result,) = measure_on_lab([lab_device], [artifact], BenchProtocol(), strict=False)[
        lab_device.name
    ]
    assert result.validity != "invalid", result.validity_reasons
    assert result.audit in ("passed", "skipped"), result.audit_detail
    assert result.runs >= 50 and result.seconds >= 1.0
    assert result.measured_on == lab_device.uri
