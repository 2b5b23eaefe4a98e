"""The search knows the precision: int8 has its own calibration, probe artifact and features."""

from __future__ import annotations

import json

import pytest

from edgedistill.fit.calibrate import latency_model_for
from edgedistill.fit.probe import export_candidate
from edgedistill.latency import calibration
from edgedistill.latency.model import FEATURES, INT8_FEATURES, LatencyModel
from edgedistill.latency.model import features as model_features
from edgedistill.profiles import load_profile
from edgedistill.students import Candidate, parse_student
from edgedistill.students.select import candidate_cost
from tests.conftest import invoke

SHAPE = (1, 32, 32)
SPECS = [
    "mbv2:d=1,e=3,k=3,r=16,se=0,w=0.25",
    "mbv2:d=2,e=6,k=5,r=24,se=1,w=0.5",
    "mbv2:d=3,e=6,k=3,r=32,se=0,w=1",
    "mbv2:d=1,e=6,k=5,r=32,se=1,w=1.25",
    "mbv2:d=2,e=3,k=3,r=16,se=1,w=0.75",
    "mbv2:d=3,e=3,k=5,r=24,se=0,w=0.25",
    "mbv2:d=1,e=3,k=3,r=32,se=1,w=1",
    "mbv2:d=2,e=6,k=3,r=32,se=0,w=0.75",
    "mbv2:d=3,e=6,k=5,r=16,se=1,w=1",
    "mbv2:d=1,e=6,k=3,r=24,se=0,w=0.5",
    "mbv2:d=2,e=3,k=5,r=32,se=1,w=0.25",
    "mbv2:d=3,e=3,k=3,r=24,se=1,w=1.25",
    "mbv2:d=1,e=3,k=5,r=16,se=0,w=1",
    "mbv2:d=2,e=6,k=5,r=16,se=0,w=1.25",
]


def _stored_model(precision: str, truth: list[float], fingerprint: dict) -> LatencyModel:
    """A calibration of `precision` fitted to exact latencies from `truth`, and saved."""
    profile = load_profile("host-cpu")
    measurements = []
    for spec in SPECS:
        cost = candidate_cost(spec, SHAPE, 10)
        values = model_features(cost, 16, precision)
        latency = sum(c * f for c, f in zip(truth, values, strict=True))
        measurements.append(calibration.measurement(spec, cost, latency, latency, precision))
    model = calibration.model_from_cost_fit(profile, precision, measurements, fingerprint)
    calibration.save(model, measurements, input_shape=SHAPE)
    return model


FP32_TRUTH = [0.01, 0.002, 0.001, 1e-8, 5e-8, 4e-8, 3e-9, 0.004, 2e-9, 5e-9]
INT8_TRUTH = [6e-3, 7e-4, 8e-4, 3e-9, 8e-7, 1.2e-8, 2.5e-8, 8e-7, 1.4e-6, 1.5e-7, 1.7e-5]


def test_int8_calibration_is_stored_apart_from_fp32_and_reloaded_for_int8_only(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("EDGEDISTILL_DATA_DIR", str(tmp_path / "data"))  # not the session's
    profile = load_profile("host-cpu")
    fingerprint = calibration.host_fingerprint(1, SHAPE)
    fp32_path = calibration.calibration_path(profile, "fp32", input_shape=SHAPE)
    int8_path = calibration.calibration_path(profile, "int8", input_shape=SHAPE)
    stored = _stored_model("int8", INT8_TRUTH, fingerprint)
    assert int8_path.is_file() and not fp32_path.exists()
    assert int8_path.name == "host-cpu.onnxruntime.onnx.int8.1x32x32.json"
    document = json.loads(int8_path.read_text())
    assert (document["precision"], document["format"]) == ("int8", "onnx")
    assert document["runtime"] == "onnxruntime"
    assert document["features"] == list(INT8_FEATURES)

    int8 = latency_model_for(profile, "int8", 1, SHAPE)
    assert int8.calibrated and int8.precision == "int8"
    assert int8.coefficients == stored.coefficients
    assert int8.channel_block == stored.channel_block
    assert not latency_model_for(profile, "fp32", 1, SHAPE).calibrated  # no fp32 one yet

    _stored_model("fp32", FP32_TRUTH, fingerprint)
    fp32 = latency_model_for(profile, "fp32", 1, SHAPE)
    assert len(fp32.coefficients) == len(FEATURES)
    assert latency_model_for(profile, "int8", 1, SHAPE).coefficients == int8.coefficients
    # host-cpu deploys fp16 runs as fp32 ONNX: the fp32 calibration predicts them
    assert latency_model_for(profile, "fp16", 1, SHAPE).precision == "fp32"
    # another input shape is another calibration, in a file of its own: both stay
    assert not latency_model_for(profile, "int8", 1, (1, 64, 64)).calibrated
    assert not calibration.calibration_path(profile, "int8", input_shape=(1, 64, 64)).exists()
    assert int8_path.is_file()


def test_fp16_tensorrt_is_not_predicted_by_an_onnx_calibration():
    model = latency_model_for(load_profile("jetson-orin-nano"), "fp16")
    assert not model.calibrated and model.precision == "fp16"


def test_int8_features_price_se_gates_and_unaligned_depthwise_channels():
    names = list(INT8_FEATURES)
    plain = model_features(candidate_cost("mbv2:d=1,r=32,se=0,w=1", SHAPE, 10), 16, "int8")
    gated = model_features(candidate_cost("mbv2:d=1,r=32,se=1,w=1", SHAPE, 10), 16, "int8")
    for name in ("float_island_bytes", "gated_pixels", "other_kernels"):
        assert gated[names.index(name)] > plain[names.index(name)], name
    narrow = model_features(candidate_cost("mbv2:d=1,r=32,se=0,w=0.25", SHAPE, 10), 16, "int8")
    assert narrow[names.index("unaligned_depthwise_macs")] > 0  # 4- and 12-channel layers
    assert plain[names.index("unaligned_depthwise_macs")] < narrow[names.index("depthwise_macs")]
    assert (
        model_features(candidate_cost(SPECS[0], SHAPE, 10), 1, "int8")[
            names.index("unaligned_depthwise_macs")
        ]
        == 0
    )  # block 1: every channel count is aligned
    assert len(model_features(candidate_cost(SPECS[0], SHAPE, 10), 16, "fp32")) == len(FEATURES)


def test_int8_probe_artifact_is_qdq_with_uint8_activations(tmp_path):
    import onnx

    from edgedistill.export.onnx_qdq import qdq_summary

    path = tmp_path / "probe.onnx"
    cost = export_candidate(parse_student(SPECS[0]), SHAPE, 10, path, "int8")
    counts = qdq_summary(path)
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0
    assert counts["weights_uint8"] > 0  # per-channel 8-bit weights, stored unsigned
    graph = onnx.load(str(path)).graph
    uint8 = onnx.TensorProto.UINT8
    zero_points = {i.name for i in graph.initializer if i.data_type == uint8}
    assert any(n.op_type == "QuantizeLinear" and n.input[2] in zero_points for n in graph.node)
    assert cost.macs == candidate_cost(SPECS[0], SHAPE, 10).macs


def test_search_int8_json_on_host_cpu_uses_the_int8_calibration(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEDISTILL_DATA_DIR", str(tmp_path / "data"))  # not the session's
    fingerprint = calibration.host_fingerprint(1, SHAPE)
    stored = _stored_model("int8", INT8_TRUTH, fingerprint)
    result = invoke(
        "search", "--device", "host-cpu", "--budget", "1ms", "--precision", "int8",
        "--samples", "12", "--top", "5", "--json",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    assert document["precision"] == "int8" and document["latency_model_precision"] == "int8"
    assert document["calibrated"] is True
    first = document["candidates"][0]
    cost = candidate_cost(Candidate.parse(first["spec"]).spec, SHAPE, 10)
    assert first["predicted_ms"] == pytest.approx(stored.predict(cost), abs=1e-5)


def test_search_refuses_an_unknown_precision_and_too_few_int8_samples():
    result = invoke("search", "--device", "host-cpu", "--budget", "1ms", "--precision", "int4")
    assert result.returncode == 2 and "--precision" in result.stderr
    result = invoke(
        "search", "--device", "host-cpu", "--budget", "1ms", "--precision", "int8",
        "--samples", "10",
    )  # fmt: skip
    assert result.returncode == 2 and "--samples" in result.stderr and "int8" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_search_int8_calibrates_host_cpu_with_int8_artifacts_on_first_use(tmp_path):
    """The real thing (minutes): no stored calibration, so search times 12 int8 QDQ students."""
    from tests.conftest import run_cli

    env = {"EDGEDISTILL_DATA_DIR": str(tmp_path / "data")}
    result = run_cli(
        "search", "--device", "host-cpu", "--budget", "0.2ms", "--precision", "int8",
        "--samples", "12", "--top", "3", "--json", env=env,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    assert document["calibrated"] is True and document["latency_model_precision"] == "int8"
    stored = tmp_path / "data" / "calibration" / "host-cpu.onnxruntime.onnx.int8.1x32x32.json"
    assert json.loads(stored.read_text())["provenance"]["samples"] == "12"
    assert not list((tmp_path / "data" / "calibration").glob("*.fp32.*"))
