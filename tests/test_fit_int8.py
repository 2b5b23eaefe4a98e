"""`fit` at int8, end to end on the tiny digits recipe: the quantization-aware student, its QDQ
ONNX measured on this host, and the full-integer TFLite the Edge TPU compiler takes."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import TINY_RECIPE, budget_with_room, invoke


@pytest.fixture(scope="module")
def host_int8_calibration(isolated_dirs):
    """host-cpu's int8 latency model, calibrated once on 12 int8 QDQ candidates."""
    from edgedistill.fit.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space

    profile = load_profile("host-cpu")
    space = enumerate_space((1, 32, 32))
    return calibrate_on_host(profile, space, (1, 32, 32), 10, samples=12, precision="int8")


def test_host_int8_fit_ships_a_qdq_onnx_measured_here(tmp_path, host_int8_calibration):
    out = tmp_path / "run"
    budget = f"{budget_with_room(host_int8_calibration, 0.2):g}ms"  # room on slow hosts
    result = invoke("fit", "--device", "host-cpu", "--budget", budget, "--precision", "int8",
                    "--task", str(TINY_RECIPE), "--epochs", "1", "--out", str(out),
                    "--json")  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: measured over the budget
    summary = json.loads(result.stdout)
    student, quant = summary["student"], summary["quantization"]
    assert student["precision"] == "int8"
    assert student["accuracy_ptq"] == quant["accuracy_ptq"]
    assert quant["method"] in ("qat", "ptq") and quant["calibration_samples"] > 0
    assert "asymmetric" in quant["scheme"]
    (onnx,) = summary["artifacts"]
    assert (onnx["format"], onnx["precision"]) == ("onnx", "int8")
    assert onnx["path"] == "bundle/model.int8.onnx" and (out / onnx["path"]).is_file()
    assert onnx["validation"] == "outputs"
    assert student["accuracy"] == onnx["accuracy"]  # the deployed artifact's, by onnxruntime
    assert summary["latency_ms"]["measured_on"] == "host"
    assert "quantize" in summary["stages_s"]
    checkpoint = json.loads((out / "quantized" / "student.json").read_text())
    assert checkpoint["quant"]["symmetric_activations"] is False
    card = (out / "bundle" / "README.md").read_text()
    assert "int8" in card and "PTQ" in card


@pytest.mark.skipif(shutil.which("edgetpu_compiler") is not None, reason="compiler installed")
def test_coral_fit_writes_a_full_int8_tflite_and_names_the_compile_command(tmp_path):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "run"
    result = invoke("fit", "--device", "coral-edgetpu", "--budget", "0.5ms",
                    "--task", str(TINY_RECIPE), "--epochs", "1", "--out", str(out),
                    "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["student"]["precision"] == "int8"  # the profile's deploy precision
    formats = {(a["format"], a["precision"]) for a in summary["artifacts"]}
    assert formats == {("onnx", "int8"), ("tflite", "int8")}
    (pending,) = summary["pending"]
    assert "edgetpu_compiler -s -o . model.int8.tflite" in pending
    tflite = next(a for a in summary["artifacts"] if a["format"] == "tflite")
    interpreter = Interpreter(model_path=str(out / tflite["path"]))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert tflite["accuracy"] is not None  # the chain judged agreement on decisive samples
