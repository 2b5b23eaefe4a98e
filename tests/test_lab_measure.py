"""Device-side runner, validity and audit, measured for real through a local sshd (host-cpu)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgedistill.lab import validity
from edgedistill.lab.audit import compare, host_reference
from edgedistill.lab.errors import UntrustedResultError
from edgedistill.lab.fit_bench import bench_stage
from edgedistill.lab.host_bench import BenchProtocol, LatencyResult
from edgedistill.lab.measure import latency_fields, measure_on_lab, refuse_untrusted
from edgedistill.lab.pool import run_on_devices
from edgedistill.lab.targets import target_file
from edgedistill.profiles import load_profile
from tests.lab_fixtures import running_sshd, tiny_onnx

RUNNER = target_file("linux/runner.py")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("model") / "tiny.onnx")


def run_runner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUNNER), *args], capture_output=True, text=True, timeout=120
    )


def test_runner_follows_the_protocol_and_prints_one_json_document(model):
    done = run_runner("bench", str(model), "--runs", "60", "--min-seconds", "1.0")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["timed"]["runs"] >= 60 and report["timed"]["seconds"] >= 1.0
    assert report["warmup"]["runs"] >= 1 and report["warmup"]["seconds"] >= 0.5
    latency = report["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert report["runtime"] == "onnxruntime" and report["threads"] == 1
    assert report["init_ms"] > 0 and report["peak_rss_mb"] > 0
    assert {"before", "after"} <= {k.removeprefix("state_") for k in report}
    assert len(report["audit"]["outputs"]) == 3
    assert report["audit"]["outputs"][0][0]["shape"] == [1, 10]


def test_runner_without_a_backend_for_the_file_exits_3(tmp_path):
    unknown = tmp_path / "model.pte"
    unknown.write_bytes(b"not a model this runner knows")
    done = run_runner("bench", str(unknown))
    assert done.returncode == 3
    assert "no runner backend" in done.stderr and done.stdout == ""


def test_runner_without_tensorrt_or_trtexec_refuses_an_engine_with_exit_3(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    done = run_runner("bench", str(engine))
    assert done.returncode == 3
    assert "tensorrt is not installed" in done.stderr and done.stdout == ""


def test_runner_refuses_a_corrupt_model_with_exit_2(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x01garbage")
    done = run_runner("bench", str(broken))
    assert done.returncode == 2 and "cannot load" in done.stderr


def test_lab_measurement_over_ssh_is_audited_and_names_the_device(sshd, model):
    entry = sshd.entry()
    results = measure_on_lab([entry], [model], BenchProtocol())
    (result,) = results["loopback"]
    assert result.measured_on == f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    assert result.runs >= 50 and result.seconds >= 1.0 and result.warmup_seconds >= 0.5
    assert result.p50 <= result.p90 <= result.p99
    assert result.audit == "passed", result.audit_detail
    assert result.validity in ("valid", "unverified")
    fields = latency_fields(result)
    assert fields["measured_on"].startswith("ssh://") and fields["target"] == "loopback"
    assert fields["audit"] == "passed"


def test_audit_fails_when_the_device_ran_a_different_model(model, tmp_path):
    other = tiny_onnx(tmp_path / "other.onnx", seed=1)
    done = run_runner("bench", str(other), "--runs", "50", "--min-seconds", "0.1")
    device = json.loads(done.stdout)
    verdict = compare(device["audit"]["outputs"], host_reference(model))
    assert verdict.status == "failed" and "differs from the host" in verdict.detail
    same = compare(device["audit"]["outputs"], host_reference(other))
    assert same.status == "passed"
    swapped = compare(device["audit"]["outputs"], host_reference(other), "0" * 64, "1" * 64)
    assert swapped.status == "failed" and "different file" in swapped.detail


def result_with(**overrides) -> LatencyResult:
    base = {
        "p50": 1.0,
        "p90": 1.1,
        "p99": 1.2,
        "mean": 1.0,
        "runs": 60,
        "seconds": 1.2,
        "threads": 1,
        "runtime": "onnxruntime",
        "target": "board",
        "measured_on": "ssh://u@h:22",
        "warmup_runs": 3,
        "warmup_seconds": 0.6,
        "device_state": {
            phase: {"temps_c": {"cpu": 40.0}, "freq_mhz": {"cpu0": 1500.0}}
            for phase in ("before", "after")
        },
    }
    return LatencyResult(**{**base, **overrides})


def test_too_few_runs_or_too_short_a_run_is_invalid():
    assert validity.assess(result_with(), BenchProtocol()).status == "valid"
    short = validity.assess(result_with(runs=20), BenchProtocol())
    assert short.status == "invalid" and "fewer than the 50 required" in short.reasons[0]
    brief = validity.assess(result_with(seconds=0.3), BenchProtocol())
    assert brief.status == "invalid" and "less than 1 s" in brief.reasons[0]
    cold = validity.assess(result_with(warmup_seconds=0.1), BenchProtocol())
    assert cold.status == "invalid"
    asked_more = validity.assess(result_with(), BenchProtocol(runs=100))
    assert asked_more.status == "invalid", "the protocol asked for 100 runs"


def test_a_result_without_thermal_or_clock_information_is_unverified():
    blind = result_with(device_state={"before": {}, "after": {}})
    verdict = validity.assess(blind, BenchProtocol())
    assert verdict.status == "unverified"
    assert any("temperature" in r for r in verdict.reasons)
    assert any("clock" in r for r in verdict.reasons)


def test_a_device_that_reports_throttling_gives_an_invalid_result():
    state = {"temps_c": {"cpu": 80.0}, "freq_mhz": {"cpu0": 600.0}}
    pi = {**state, "throttle": {"throttled_now": True, "vcgencmd_get_throttled": "0x50005"}}
    verdict = validity.assess(
        result_with(device_state={"before": state, "after": pi}), BenchProtocol()
    )
    assert verdict.status == "invalid" and "0x50005" in verdict.reasons[0]


def test_strict_measurement_refuses_invalid_results_and_failed_audits():
    with pytest.raises(UntrustedResultError, match="invalid measurement: 20 timed runs"):
        refuse_untrusted(validity.apply(result_with(runs=20), BenchProtocol()))
    with pytest.raises(UntrustedResultError, match="audit failed"):
        refuse_untrusted(result_with(audit="failed", audit_detail="output differs"))


def test_several_devices_run_in_parallel_one_job_at_a_time_each(sshd):
    devices = [sshd.entry(name="board-a"), sshd.entry(name="board-b")]
    clock = "import time; print(time.time())"

    def job(transport):
        start = float(transport.run([transport.python, "-c", clock]).stdout)
        transport.run(["sleep", "1"])
        end = float(transport.run([transport.python, "-c", clock]).stdout)
        return start, end

    outcomes = run_on_devices(devices, [job, job])
    assert [o.error for o in outcomes] == [None, None]
    for outcome in outcomes:
        (start1, end1), (start2, end2) = outcome.results
        assert end1 <= start2, f"{outcome.device.name} ran two jobs at once"
    first_a, first_b = outcomes[0].results[0], outcomes[1].results[0]
    assert max(first_a[0], first_b[0]) < min(first_a[1], first_b[1]), "devices ran in parallel"


def test_fit_bench_stage_on_two_targets_keeps_each_and_reports_the_slowest(sshd, model, tmp_path):
    devices = [sshd.entry(name="board-a"), sshd.entry(name="board-b")]
    teacher = tiny_onnx(tmp_path / "teacher.onnx", seed=2)
    exported: list[Path] = []

    def teacher_file() -> Path:
        exported.append(teacher)
        return teacher

    notes: list[str] = []
    student, teacher_fields = bench_stage(
        load_profile("host-cpu"),
        devices,
        [SimpleNamespace(format="onnx", precision="fp32", path=str(model))],
        teacher_file,
        BenchProtocol(),
        lambda *args: None,
        notes,
    )
    assert len(exported) == 1, "the teacher is exported once for every device"
    assert set(student["by_target"]) == set(teacher_fields["by_target"]) == {"board-a", "board-b"}
    assert student["p90"] == max(t["p90"] for t in student["by_target"].values())
    assert student["target"] in ("board-a", "board-b")
    assert all(t["audit"] == "passed" for t in student["by_target"].values())
    assert (student["format"], student["precision"], student["deployed"]) == ("onnx", "fp32", True)
    assert student["artifact_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
