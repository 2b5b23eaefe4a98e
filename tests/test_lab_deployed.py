"""Lab devices time what ships: TFLite on an rpi5-profile board, TensorRT engines on a Jetson.

Over real sshds on 127.0.0.1, one with and one without an SFTP subsystem, each a device entry
with the rpi5 profile: `calibrate --lab` times TFLite int8 candidates there, `fit` times the
TFLite it ships on both (fp32 here: a one-epoch int8 student's QDQ ONNX is refused by the export
check often enough to make the test flaky; the int8 TFLite path is what calibration times),
and verification measures candidates there before training. The
Jetson path uses `tests/standin/trtexec`, a STAND-IN for NVIDIA's trtexec (no GPU here): the
engine is built on the device from the ONNX sent, cached there, and timed by the runner.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.measure import latency_fields, measure_on_lab
from edgedistill.lab.timing import TimedArtifact
from tests.conftest import TINY_RECIPE, invoke
from tests.lab_fixtures import running_sshd, tiny_onnx

STANDIN = Path(__file__).resolve().parent / "standin"
MARKER = b"EDGEDISTILL STAND-IN TENSORRT ENGINE"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


@pytest.fixture(scope="module")
def sshd_no_sftp(tmp_path_factory):
    yield from running_sshd(tmp_path_factory, sftp=False)


@pytest.fixture(scope="module")
def lab(sshd, sshd_no_sftp, tmp_path_factory) -> Path:
    """Two rpi5-profile boards: `pi` (SFTP) and `pi-minimal` (no SFTP subsystem)."""
    return sshd.write_lab(
        tmp_path_factory.mktemp("lab") / "devices.yaml",
        sshd.device("pi", profile="rpi5"),
        sshd_no_sftp.device("pi-minimal", profile="rpi5"),
    )


@pytest.fixture(scope="module")
def calibrated(lab):
    """`calibrate --device rpi5 --lab FILE --target pi-minimal`: TFLite int8, over exec channels."""
    result = invoke("calibrate", "--device", "rpi5", "--task", str(TINY_RECIPE), "--lab",
                    str(lab), "--target", "pi-minimal", "--samples", "12", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow  # 12 TFLite int8 conversions: minutes on 2 cores
def test_calibrate_on_a_lab_board_times_tflite_int8_as_the_board_runs_it(calibrated, sshd_no_sftp):
    assert (calibrated["format"], calibrated["runtime"]) == ("tflite", "tflite")
    assert calibrated["precision"] == "int8"
    provenance = calibrated["provenance"]
    assert provenance["measured_on"] == f"ssh://{sshd_no_sftp.user}@127.0.0.1:{sshd_no_sftp.port}"
    assert provenance["lab_target"] == "pi-minimal" and provenance["format"] == "tflite"
    assert provenance["runtime"].startswith("tflite ")
    assert calibrated["path"].endswith("rpi5.tflite.tflite.int8.1x32x32.json")


@pytest.fixture(scope="module")
def rpi5_fit(lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("rpi5-fit") / "run"
    result = invoke("fit", "--device", "rpi5", "--budget", "0.2ms", "--task", str(TINY_RECIPE),
                    "--epochs", "1", "--precision", "fp32", "--lab", str(lab),
                    "--target", "pi,pi-minimal",
                    "--verify-on-device", "2", "--out", str(out), "--json")  # fmt: skip
    assert result.returncode in (0, 1) and (out / "summary.json").is_file(), result.stderr
    return json.loads((out / "summary.json").read_text()), out


def test_fit_on_rpi5_boards_times_the_tflite_it_ships(rpi5_fit):
    summary, out = rpi5_fit
    latency = summary["latency_ms"]
    (shipped,) = [a for a in summary["artifacts"] if a["format"] == "tflite"]
    assert (latency["format"], latency["precision"]) == ("tflite", "fp32")
    assert latency["deployed"] is True and latency["artifact_sha256"] == shipped["sha256"]
    assert latency["runtime"].startswith("tflite ")
    assert set(latency["by_target"]) == {"pi", "pi-minimal"}, "with SFTP and without"
    for figures in latency["by_target"].values():
        assert figures["format"] == "tflite" and figures["audit"] == "passed"
    assert summary["fits_budget_basis"] == "measured_p90"
    assert summary["teacher"]["latency_ms"]["format"] == "onnx"
    assert any("verified before training" in note for note in summary["notes"])


@pytest.mark.slow  # TFLite int8 conversions of the verified candidates
def test_verification_measures_candidates_on_the_lab_board_before_training(lab, tmp_path):
    from edgedistill.fit.search import SearchSettings, search_stage
    from edgedistill.lab.inventory import load_lab
    from edgedistill.profiles import load_profile

    board = load_lab(lab).devices["pi-minimal"]
    settings = SearchSettings(verify_on_device=2, targets=(board,))
    chosen = search_stage(load_profile("rpi5"), "int8", 0.2, (1, 32, 32), 10, tmp_path, settings)
    verified = json.loads((tmp_path / "search.json").read_text())["verified_on_device"]
    assert verified and all(v["p90_ms"] is not None for v in verified)
    assert {(v["format"], v["precision"]) for v in verified} == {("tflite", "int8")}
    assert any("verified before training" in note for note in chosen.notes)


def test_standin_trtexec_engine_is_built_on_the_device_cached_and_timed(sshd, tmp_path):
    onnx = tiny_onnx(tmp_path / "student.onnx")
    log = tmp_path / "trtexec.log"
    env = {"STANDIN_TRTEXEC_LOG": str(log)}
    jetson = sshd.entry(
        name="orin", profile="jetson-orin-nano", trtexec=str(STANDIN / "trtexec"), env=env
    )
    timed = TimedArtifact(onnx, "tensorrt", "fp16")
    first = measure_on_lab([jetson], [timed], BenchProtocol())["orin"][0]
    second = measure_on_lab([jetson], [timed], BenchProtocol())["orin"][0]
    assert (first.format, first.precision) == ("tensorrt", "fp16")
    assert first.runtime.startswith("tensorrt 10.3.0 trtexec")
    build = first.extra["engine_build"]
    assert build["onnx_sha256"] == hashlib.sha256(onnx.read_bytes()).hexdigest()
    assert build["cached"] is False and second.extra["engine_build"]["cached"] is True
    assert first.artifact_sha256 == build["sha256"] == second.artifact_sha256
    engines = list((Path(sshd.root) / "device-work" / "edgedistill-engines").glob("*.engine"))
    assert len(engines) == 1 and engines[0].read_bytes().startswith(MARKER)
    assert hashlib.sha256(engines[0].read_bytes()).hexdigest() == first.artifact_sha256
    builds = [line for line in log.read_text().splitlines() if "--saveEngine" in line]
    assert len(builds) == 1 and "--fp16" in builds[0], "built once, at the profile's precision"
    assert first.p50 == pytest.approx(0.83, abs=0.05) and first.validity != "invalid"
    assert first.audit == "skipped" and "sha256" in first.audit_detail
    fields = latency_fields(first)
    assert fields["format"] == "tensorrt" and fields["engine_build"]["tensorrt"] == "10.3.0"
