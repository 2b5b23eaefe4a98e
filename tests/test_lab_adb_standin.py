"""The adb transport and the Android benchmark path against adb's documented behaviour.

No phone here: `tests/standin/adb` and `tests/standin/benchmark_model` are STAND-INS that act out
what Android's adb and TFLite's benchmark_model are documented to do (see their docstrings);
every test that uses them says `standin` in its name. Output parsing is checked against the
output format benchmark_model prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgedistill.lab import benchmark_model
from edgedistill.lab.errors import LabAccessError, LabInfrastructureError, UntrustedResultError
from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.measure import measure_on_lab
from edgedistill.lab.transports import open_transport
from edgedistill.lab.transports.adb import AdbDevice
from tests.lab_fixtures import hostile_strings

STANDIN = Path(__file__).resolve().parent / "standin"
SERIAL = "STANDIN0001"


@pytest.fixture
def adb_state(tmp_path, monkeypatch) -> Path:
    state = tmp_path / "adb-state"
    state.mkdir()
    (state / f"{SERIAL}.state").write_text("device")
    monkeypatch.setenv("EDGEDISTILL_STANDIN_ADB", str(state))
    return state


def phone(tmp_path: Path, **overrides) -> AdbDevice:
    (tmp_path / "phone").mkdir(exist_ok=True)
    entry = {
        "name": "phone",
        "profile": "pixel-8",
        "transport": "adb",
        "serial": SERIAL,
        "adb": str(STANDIN / "adb"),
        "workdir": str(tmp_path / "phone"),
        "benchmark_model": str(STANDIN / "benchmark_model"),
        "connect_timeout_s": 10,
        "retries": 1,
    }
    return AdbDevice.model_validate({**entry, **overrides})


def calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls.log").read_text().splitlines()]


def test_standin_adb_exit_status_comes_from_the_marker_not_from_adb(adb_state, tmp_path):
    with open_transport(phone(tmp_path)) as device:
        failed = device.run(["sh", "-c", "printf 'no newline'; echo oops >&2; exit 7"])
        fine = device.run(["true"])
    assert failed.exit_status == 7, "the stand-in adb exits 0; the marker carries the status"
    assert failed.stdout == "no newline" and "oops" in failed.stderr
    assert fine.exit_status == 0


def test_standin_adb_unauthorized_fails_fast_saying_what_to_do_on_the_phone(adb_state, tmp_path):
    (adb_state / f"{SERIAL}.state").write_text("unauthorized")
    with pytest.raises(LabAccessError, match="Allow USB debugging"):
        open_transport(phone(tmp_path, retries=3))
    assert [c[2] for c in calls(adb_state)] == ["get-state"], "no retries for unauthorized"


def test_standin_adb_offline_device_is_reconnected_then_used(adb_state, tmp_path):
    (adb_state / f"{SERIAL}.state").write_text("offline")
    with open_transport(phone(tmp_path)) as device:
        assert device.run(["true"]).exit_status == 0
    assert ["-s", SERIAL, "reconnect", "offline"] in calls(adb_state)


def test_standin_adb_push_cut_by_the_device_going_offline_is_retried(adb_state, tmp_path):
    source = tmp_path / "model.tflite"
    source.write_bytes(bytes(range(256)) * 1000)
    (adb_state / f"{SERIAL}.push_drops").write_text("1")
    with open_transport(phone(tmp_path)) as device:
        remote = device.push(source, "model.tflite")
        assert Path(remote).read_bytes() == source.read_bytes()
        leftovers = sorted(p.name for p in Path(device.session_dir).iterdir())
    assert leftovers == ["model.tflite"]
    assert ["-s", SERIAL, "reconnect", "offline"] in calls(adb_state)


def test_standin_adb_run_cut_by_the_device_going_offline_is_not_retried(adb_state, tmp_path):
    (adb_state / f"{SERIAL}.offline_after_shells").write_text("1")  # the mkdir of open()
    device = open_transport(phone(tmp_path))
    try:
        with pytest.raises(LabInfrastructureError, match="cut off"):
            device.run(["true"])
    finally:
        device.close()
    shells = [c for c in calls(adb_state) if c[2] == "shell" and "true" in c[3]]
    assert len(shells) == 1


def test_standin_adb_device_not_connected_is_an_infrastructure_failure(adb_state, tmp_path):
    (adb_state / f"{SERIAL}.state").unlink()
    with pytest.raises(LabInfrastructureError, match="cannot connect"):
        open_transport(phone(tmp_path))


def test_standin_adb_hostile_arguments_reach_the_device_shell_unchanged(adb_state, tmp_path):
    canary = tmp_path / "canary"
    hostile = hostile_strings(str(canary))
    echo = "import json, sys; print(json.dumps(sys.argv[1:]))"
    with open_transport(phone(tmp_path)) as device:
        result = device.run([sys.executable, "-c", echo, *hostile])
    assert result.exit_status == 0, result.stderr
    assert json.loads(result.stdout) == hostile
    assert not canary.exists()


DOCUMENTED_OUTPUT = """\
INFO: Graph: [mobilenet_quant_v1_224.tflite]
INFO: Use gpu: [1]
INFO: Created TensorFlow Lite delegate for GPU.
INFO: Explicitly applied GPU delegate, and the model graph will be completely executed by the \
delegate.
INFO: Initialized session in 1361.24ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if \
exceeding 150 seconds.
INFO: count=5 first=125113 curr=112537 min=111758 max=125113 avg=115344 std=4959 p5=111758 \
median=112912 p95=125113

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if \
exceeding 150 seconds.
INFO: count=50 first=119614 curr=115889 min=111842 max=119614 avg=115246 std=1329 p5=112107 \
median=115350 p95=116620

INFO: Inference timings in us: Init: 1361236, First inference: 125113, Warmup (avg): 115344, \
Inference (avg): 115246
INFO: Memory footprint delta from the start of the tool (MB): init=14.4414 overall=14.8164
"""


def test_benchmark_model_output_is_parsed_as_documented():
    report = benchmark_model.parse(DOCUMENTED_OUTPUT)
    assert report.requested == [(1, 0.5), (50, 1.0)]
    assert report.warmup is not None and report.warmup.count == 5
    assert report.timed is not None and report.timed.count == 50
    assert report.timed.get("median") == 115350 and report.timed.get("p95") == 116620
    assert report.init_us == 1361236 and report.inference_avg_us == 115246
    assert report.memory_mb == pytest.approx(14.8164)
    assert report.delegate == {"name": "GPU", "applied": "fully"}


def test_benchmark_model_delegate_fallback_is_read():
    text = (
        "INFO: Though NNAPI delegate is explicitly applied, the model graph will not be "
        "executed by the delegate.\nINFO: count=50 avg=900 median=890"
    )
    report = benchmark_model.parse(text)
    assert report.delegate == {"name": "NNAPI", "applied": "not"}


@pytest.fixture
def tflite(tmp_path) -> Path:
    model = tmp_path / "student.tflite"
    model.write_bytes(b"TFL3 stand-in payload: the stand-in benchmark_model never reads it")
    return model


def test_standin_benchmark_model_over_adb_gives_a_measurement(adb_state, tmp_path, tflite):
    device = phone(tmp_path)
    (result,) = measure_on_lab([device], [tflite], BenchProtocol(threads=4))["phone"]
    assert result.measured_on == f"adb://{SERIAL}"
    assert result.p50 == pytest.approx(1.499) and result.p90 is None and result.p99 is None
    assert result.extra["p95"] == pytest.approx(1.56)
    assert result.runs >= 667 and result.seconds >= 1.0, "at least 50 runs and at least 1 s"
    assert result.warmup_seconds >= 0.5
    assert result.audit == "skipped"  # benchmark_model prints no outputs
    shell = next(c[3] for c in calls(adb_state) if c[2] == "shell" and "--graph=" in c[3])
    for expected in ("--num_threads=4", "--num_runs=50", "--min_secs=1.0", "--warmup_runs=1"):
        assert expected in shell


def test_standin_benchmark_model_reporting_too_few_runs_is_refused(
    adb_state, tmp_path, tflite, monkeypatch
):
    monkeypatch.setenv("STANDIN_BENCHMARK_MODE", "short")
    with pytest.raises(UntrustedResultError, match="10 timed runs, fewer than the 50 required"):
        measure_on_lab([phone(tmp_path)], [tflite], BenchProtocol())


def test_standin_gpu_delegate_that_fell_back_to_cpu_is_refused(
    adb_state, tmp_path, tflite, monkeypatch
):
    monkeypatch.setenv("STANDIN_BENCHMARK_MODE", "gpu-fallback")
    with pytest.raises(UntrustedResultError, match="gpu delegate requested but not applied"):
        measure_on_lab([phone(tmp_path, delegate="gpu")], [tflite], BenchProtocol())


def test_standin_benchmark_model_failure_is_an_infrastructure_failure(
    adb_state, tmp_path, tflite, monkeypatch
):
    monkeypatch.setenv("STANDIN_BENCHMARK_MODE", "crash")
    with pytest.raises(LabInfrastructureError, match="benchmark_model failed.*Benchmarking failed"):
        measure_on_lab([phone(tmp_path)], [tflite], BenchProtocol())
