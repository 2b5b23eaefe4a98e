"""One fit serving several devices: a run directory per device and an index."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY_RECIPE, budget_with_room, invoke, run_cli

DEVICES = ("host-cpu", "jetson-orin-nano", "iphone-15-pro")


@pytest.fixture(scope="module")
def fleet_fit(tmp_path_factory, host_calibration):
    """A budget every candidate meets: each device picks the most capable student, the same
    one, which is therefore distilled once and shared. fp32 ONNX for all three keeps the test
    to the fleet's own work (each format's export has its own tests)."""
    out = tmp_path_factory.mktemp("fleet") / "run"
    result = run_cli(
        "fit",
        "--device",
        ",".join(DEVICES),
        "--budget",
        "100ms",
        "--task",
        str(TINY_RECIPE),
        "--epochs",
        "1",
        "--precision",
        "fp32",
        "--formats",
        "onnx",
        "--out",
        str(out),
        "--json",
    )
    return result, out


@pytest.mark.slow  # distills the space's largest student (minutes on 2 cores); refusals stay in CI
def test_three_device_fit_writes_three_validated_runs_and_an_index(fleet_fit):
    from edgedistill.bundle import verify_bundle

    result, out = fleet_fit
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    index = json.loads(result.stdout)
    assert index == json.loads((out / "summary.json").read_text())
    assert index["kind"] == "fleet"
    assert [run["device"] for run in index["devices"]] == list(DEVICES)
    for run in index["devices"]:
        summary = json.loads((out / run["run"] / "summary.json").read_text())
        assert summary["device"] == run["device"]
        assert summary["student"]["spec"] == run["student"]
        assert summary["budget_ms"] == run["budget_ms"] == 100
        assert verify_bundle(out / run["run"]).ok
    measured = {run["device"]: run["p90_ms"] is not None for run in index["devices"]}
    assert measured == {"host-cpu": True, "jetson-orin-nano": False, "iphone-15-pro": False}


@pytest.mark.slow
def test_a_student_chosen_by_several_devices_is_distilled_once(fleet_fit):
    result, out = fleet_fit
    index = json.loads((out / "summary.json").read_text())
    first, *others = index["devices"]
    assert {run["student"] for run in index["devices"]} == {first["student"]}
    assert first["shared_student_with"] is None
    assert all(run["shared_student_with"] == first["device"] for run in others)
    for run in others:
        summary = json.loads((out / run["run"] / "summary.json").read_text())
        assert any("distilled once" in note for note in summary["notes"])
        weights = (out / run["run"] / "checkpoint" / "student.safetensors").read_bytes()
        assert weights == (out / first["run"] / "checkpoint" / "student.safetensors").read_bytes()
    assert "host-cpu: distill" in result.stderr or "host-cpu" in result.stderr


@pytest.mark.parametrize(
    ("devices", "budget", "message"),
    [
        ("host-cpu,pixel-8", "1ms,2ms,3ms", "one per device (2 devices, 3 budgets)"),
        ("host-cpu,host-cpu", "1ms", "named twice"),
        ("host-cpu,,pixel-8", "1ms", "empty name"),
        ("host-cpu,no-such-device", "1ms", "no-such-device"),
    ],
)
def test_bad_device_lists_are_refused_and_leave_nothing(tmp_path, devices, budget, message):
    out = tmp_path / "fleet"
    result = invoke(
        "fit", "--device", devices, "--budget", budget, "--task", str(TINY_RECIPE),
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def small_fleet_fit(tmp_path_factory, tiny_budget_ms):
    """The CI-sized fleet: two devices, one budget each that leaves only small students (this
    host's from its calibration, the phone's from its own latency model), one epoch."""
    from edgedistill.fit.calibrate import latency_model_for
    from edgedistill.profiles import load_profile

    phone = latency_model_for(load_profile("iphone-15-pro"), "fp32", 1, (1, 32, 32))
    budgets = f"{tiny_budget_ms:g}ms,{budget_with_room(phone, 0.0):g}ms"
    out = tmp_path_factory.mktemp("small-fleet") / "run"
    result = run_cli(
        "fit", "--device", "host-cpu,iphone-15-pro", "--budget", budgets,
        "--task", str(TINY_RECIPE), "--epochs", "1", "--precision", "fp32", "--formats", "onnx",
        "--out", str(out), "--json",
    )  # fmt: skip
    return result, out


def test_a_two_device_fit_writes_a_validated_run_per_device_and_an_index(small_fleet_fit):
    from edgedistill.bundle import verify_bundle

    result, out = small_fleet_fit
    assert result.returncode in (0, 1), result.stderr
    index = json.loads(result.stdout)
    assert index == json.loads((out / "summary.json").read_text()) and index["kind"] == "fleet"
    assert [run["device"] for run in index["devices"]] == ["host-cpu", "iphone-15-pro"]
    for run in index["devices"]:
        summary = json.loads((out / run["run"] / "summary.json").read_text())
        assert summary["device"] == run["device"] and summary["student"]["spec"] == run["student"]
        assert summary["budget_ms"] == run["budget_ms"]
        assert verify_bundle(out / run["run"]).ok
    host, phone = index["devices"]
    assert host["p90_ms"] is not None and phone["p90_ms"] is None  # only this host is measured
    if phone["student"] == host["student"]:
        assert phone["shared_student_with"] == "host-cpu"
