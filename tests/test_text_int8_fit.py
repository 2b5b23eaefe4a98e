"""int8 text students through `fit`, as a user runs it: the fortunes task distilled into a
transformer student whose linear layers are int8 (quant/encoder_plan.py) for a phone that
deploys int8 TFLite (its QDQ ONNX and int8 TFLite validated here with onnxruntime and LiteRT),
and for this host (slow: it calibrates the host's int8 text latency first), its QDQ ONNX
measured here; a device that runs full-integer models only is refused by name."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TEXT_CLASSES, TINY_TEXT_RECIPE, run_cli

pytest.importorskip("transformers", reason="text tasks need the text extra")


PHONE_BUDGET = "0.25ms"  # pixel-8's datasheet model (no calibration): the smallest students


@pytest.fixture(scope="module")
def phone_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("text-int8-phone") / "run"
    result = run_cli(
        "fit", "--device", "pixel-8", "--budget", PHONE_BUDGET, "--task", str(TINY_TEXT_RECIPE),
        "--epochs", "2", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_a_phone_that_deploys_int8_gets_an_int8_text_student_in_onnx_and_tflite(phone_run):
    out, summary = phone_run
    student, quant = summary["student"], summary["quantization"]
    assert student["family"] == "tfm" and student["precision"] == "int8"  # the profile's
    assert "int8 linear layers" in quant["scheme"] and "LayerNorm" in quant["scheme"]
    assert quant["calibration_samples"] > 0 and quant["method"] in ("qat", "ptq")
    assert student["accuracy"] > 0.39, "above the majority share of the test split"
    artifacts = {a["format"]: a for a in summary["artifacts"]}
    assert {(a["format"], a["precision"]) for a in artifacts.values()} == {
        ("onnx", "int8"),
        ("tflite", "int8"),
    }
    for artifact in artifacts.values():
        assert artifact["validation"] == "outputs" and artifact["argmax_agreement"] >= 0.98
        assert abs(artifact["accuracy"] - quant["accuracy"]) <= 0.02
    tflite = artifacts["tflite"]
    assert any("token ids fed as they are" in note for note in tflite["notes"])
    assert tflite["io_quantization"]["input"]["dtype"] == "int32"
    assert tflite["io_quantization"]["output"]["dtype"] == "int8"
    assert summary["fits_budget_basis"] == "predicted"  # no pixel-8 here
    bundle = out / "bundle"
    assert (bundle / "tokenizer" / "tokenizer.json").is_file()
    card = (bundle / "README.md").read_text()
    assert "int8 linear layers" in card and "scale" in card


@pytest.fixture(scope="module")
def text_int8_budget_ms(isolated_dirs) -> float:
    """Calibrate host-cpu's int8 latency model for the task's token ids on 12 int8 QDQ
    candidates (kept for the fit to reuse); a budget that leaves the fastest students room."""
    from edgedistill.fit.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import candidate_cost
    from edgedistill.tasks.task import load_task

    data = load_task(str(TINY_TEXT_RECIPE)).data
    shape = data.input_shape
    space = enumerate_space(shape, vocabulary=data.vocabulary)
    model = calibrate_on_host(
        load_profile("host-cpu"), space, shape, TEXT_CLASSES, samples=12, precision="int8"
    )
    fastest = min(model.predict(candidate_cost(c.spec, shape, TEXT_CLASSES)) for c in space)
    return round(fastest / (1 - model.margin()) * 1.3, 3)


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory, text_int8_budget_ms):
    out = tmp_path_factory.mktemp("text-int8") / "run"
    budget = text_int8_budget_ms
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", f"{budget:g}ms", "--precision", "int8",
        "--task", str(TINY_TEXT_RECIPE), "--epochs", "2", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: the measured p90 missed the budget
    return out, json.loads(result.stdout)


@pytest.mark.slow
def test_int8_text_fit_ships_a_validated_qdq_onnx_of_an_int8_student(int8_run):
    out, summary = int8_run
    student, quant = summary["student"], summary["quantization"]
    assert student["family"] == "tfm" and student["precision"] == "int8"
    assert "int8 linear layers" in quant["scheme"] and "LayerNorm" in quant["scheme"]
    assert quant["calibration_samples"] > 0 and quant["method"] in ("qat", "ptq")
    assert student["accuracy"] > 0.39, "above the majority share of the test split"
    (onnx,) = summary["artifacts"]
    assert (onnx["format"], onnx["precision"]) == ("onnx", "int8")
    assert onnx["validation"] == "outputs" and onnx["argmax_agreement"] >= 0.98
    assert student["accuracy"] == onnx["accuracy"]  # the deployed artifact's, by onnxruntime
    assert summary["latency_ms"]["measured_on"] == "host"
    assert summary["latency_ms"]["precision"] == "int8"
    assert (out / "bundle" / "tokenizer" / "tokenizer.json").is_file()
    card = (out / "bundle" / "README.md").read_text()
    assert "int8 linear layers" in card


def test_int8_text_fit_on_a_full_integer_device_is_refused_naming_the_format(tmp_path):
    result = run_cli(
        "fit", "--device", "coral-edgetpu", "--budget", "5ms", "--task", str(TINY_TEXT_RECIPE),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "edgetpu runs full-integer models only" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
