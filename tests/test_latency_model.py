import pytest

from edgedistill.latency import calibration
from edgedistill.latency.costs import model_cost
from edgedistill.latency.model import FEATURES, LatencyModel
from edgedistill.latency.model import features as model_features
from edgedistill.profiles import load_profile
from edgedistill.students import Candidate, build_student


def _cost(spec):
    return model_cost(build_student(Candidate.parse(spec), (1, 32, 32), 10), (1, 32, 32))


SPECS = [
    "mbv2:d=1,r=16,w=0.25",
    "mbv2:d=2,r=24,w=0.5",
    "mbv2:d=3,r=32,w=1",
    "mbv2:d=1,r=32,w=1.5",
    "mbv2:d=2,r=16,w=1",
    "mbv2:d=3,r=24,w=0.75",
    "mbv2:d=1,r=24,w=0.5",
    "mbv2:d=2,e=6,k=5,r=32,se=1,w=0.5",
    "mbv2:d=1,e=3,k=5,r=16,se=1,w=1.5",
]
EXTRA_SPECS = [
    "mbv2:d=2,e=3,k=3,r=32,se=0,w=0.75",
    "mbv2:d=1,e=6,k=5,r=24,se=1,w=1.25",
    "mbv2:d=3,e=3,k=3,r=16,se=1,w=0.25",
    "mbv2:d=2,e=6,k=3,r=24,se=0,w=1",
    "mbv2:d=1,e=3,k=5,r=32,se=1,w=0.5",
    "mbv2:d=3,e=6,k=5,r=32,se=0,w=1.25",
]


def test_fit_recovers_known_coefficients_and_channel_block_from_exact_measurements():
    truth = [0.01, 0.002, 0.001, 1e-8, 5e-8, 4e-8, 3e-9, 0.004, 2e-9, 5e-9]
    measurements = []
    for spec in SPECS + EXTRA_SPECS:
        cost = _cost(spec)
        latency = sum(c * f for c, f in zip(truth, model_features(cost, 16), strict=True))
        measurements.append(calibration.measurement(spec, cost, latency, latency))
    coefficients, error, block = calibration.fit(measurements)
    assert block == 16
    assert error < 1e-6
    assert coefficients == pytest.approx(truth, rel=1e-4)


def test_channel_block_prices_channels_in_whole_blocks():
    """20 output channels cost what 32 do at block 16; an input narrower than a block moves the
    convolution's MACs to the narrow-input term and counts a layout change."""
    narrow = _cost("mbv2:d=1,e=3,r=32,w=0.75")  # 12 channels into the first pointwise conv
    plain, blocked = model_features(narrow, 1), model_features(narrow, 16)
    names = list(FEATURES)
    assert plain[names.index("narrow_input_dense_macs")] == 0
    assert plain[names.index("aligned_dense_macs")] == narrow.macs_of("conv", "pwconv", "linear")
    assert blocked[names.index("narrow_input_dense_macs")] > 0
    assert blocked[names.index("layout_changes")] >= 1
    dense = (
        blocked[names.index("aligned_dense_macs")] + blocked[names.index("narrow_input_dense_macs")]
    )
    assert dense > narrow.macs_of("conv", "pwconv", "linear")
    gated = _cost("mbv2:d=1,e=3,r=32,se=1,w=0.75")
    assert model_features(gated, 16)[names.index("gated_bytes")] > 0
    assert blocked[names.index("gated_bytes")] == 0


def test_fit_refuses_too_few_measurements():
    cost = _cost(SPECS[0])
    with pytest.raises(ValueError, match="at least"):
        calibration.fit([calibration.measurement("x", cost, 1.0, 1.0)])


def test_uncalibrated_prediction_is_a_datasheet_roofline_that_orders_devices():
    cost = _cost("mbv2:d=3,r=32,w=1")
    nano = LatencyModel(load_profile("jetson-orin-nano"), "fp16").predict(cost)
    rpi = LatencyModel(load_profile("rpi5"), "fp32").predict(cost)
    assert 0 < nano < rpi


def test_margin_follows_the_calibration_error_within_bounds():
    profile = load_profile("host-cpu")
    assert LatencyModel(profile, "fp32").margin() == 0.3
    assert LatencyModel(profile, "fp32", [0] * 10, fit_error=0.0).margin() == 0.05
    assert LatencyModel(profile, "fp32", [0] * 10, fit_error=0.1).margin() == pytest.approx(0.1)
    assert LatencyModel(profile, "fp32", [0] * 10, fit_error=0.5).margin() == 0.3


def test_stored_calibration_from_another_machine_is_not_used(monkeypatch, tmp_path):
    # a data folder of its own: the session's host calibration, which later fits read, stays
    monkeypatch.setenv("EDGEDISTILL_DATA_DIR", str(tmp_path / "data"))
    profile = load_profile("host-cpu")
    fingerprint = {"cpu": "some other cpu", "threads": "1"}
    coefficients = [0.01, 0.001, 0.001, 1e-8, 3e-8, 1e-8, 1e-9, 0.002, 1e-9, 1e-9]
    model = LatencyModel(profile, "fp32", coefficients, 0.05, dict(fingerprint))
    calibration.save(model, [])
    assert calibration.load(profile, "fp32", fingerprint) is not None
    assert calibration.load(profile, "fp32", {"cpu": "this cpu", "threads": "1"}) is None


def test_host_calibration_predicts_measured_candidates(host_calibration):
    assert host_calibration.calibrated
    assert host_calibration.fit_error is not None and host_calibration.fit_error < 0.5
    assert host_calibration.provenance["runtime"].startswith("onnxruntime")


def test_exported_profile_overlay_carries_the_fitted_model(tmp_path):
    import yaml

    from edgedistill.fit.calibrate import latency_model_for
    from edgedistill.profiles import load_profile_file

    profile = load_profile("rpi5")
    coefficients = [0.05, 0.004, 0.002, 2e-8, 8e-8, 6e-8, 4e-9, 0.01, 4e-9, 3e-9]
    model = LatencyModel(profile, "fp32", coefficients, 0.04, {"runtime": "onnxruntime 1.0"}, 8)
    path = tmp_path / "rpi5-lab.yaml"
    path.write_text(yaml.safe_dump(calibration.overlay_profile(profile, model, "tflite")))
    shared = load_profile_file(path)
    assert shared.latency.calibrated
    loaded = latency_model_for(shared, "fp32")
    assert loaded.calibrated and loaded.coefficients == coefficients
    assert loaded.channel_block == 8
    assert loaded.provenance["source"] == "profile file"
    assert not latency_model_for(shared, "int8").calibrated  # fitted for fp32 only


def test_profile_claiming_calibration_without_a_fitted_model_is_refused(tmp_path):
    from edgedistill.errors import UserInputError
    from edgedistill.profiles import load_profile_file

    source = load_profile("rpi5").model_dump(mode="json")
    source["latency"]["calibrated"] = True
    path = tmp_path / "claims.yaml"
    import yaml

    path.write_text(yaml.safe_dump(source))
    with pytest.raises(UserInputError, match="latency"):
        load_profile_file(path)
