"""int8 export: the fake-quantized student to QDQ ONNX and to full-integer TFLite, each run by its
runtime and compared with the fake-quantized PyTorch model; the integer-only check on TFLite
files; `export` of a quantized checkpoint; int8 refusals (float checkpoint, no int8 kernel)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS, ExportContext
from edgedistill.export.chain import deploy_formats, export_chain, plan_chain
from edgedistill.export.validate import Reference, onnx_predictions
from edgedistill.profiles import load_profile
from edgedistill.quant.checkpoint import save_quantized
from edgedistill.quant.fake import is_quantized
from edgedistill.quant.prepare import calibrate, prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import build_student, parse_student
from edgedistill.tasks.data import iter_batches
from tests.conftest import TINY_RECIPE, invoke

SPEC = "mbv2:d=1,r=16,w=0.5"  # conv, depthwise, add, mean, linear, resize, pad
SE_SPEC = "mbv2:d=1,e=3,k=3,r=16,se=1,w=0.5"  # adds squeeze-excite: sigmoid and multiply
SHAPE = (1, 32, 32)
CLASSES = 10
MAX_STEPS = 4  # output quantization steps an int8 runtime's logit may be off the PyTorch model's
META = {"spec": SPEC, "task": "tiny-digits", "input_shape": list(SHAPE), "num_classes": CLASSES}


@pytest.fixture(scope="module")
def data():
    from edgedistill.tasks.data import load_task_data
    from edgedistill.tasks.task import load_recipe

    return load_task_data(load_recipe(str(TINY_RECIPE)))


@pytest.fixture(scope="module")
def float_student(data):
    """A tiny student trained for a few steps, so that its logits and accuracy mean something
    (on one thread: a model this small trains several times faster so on a busy machine)."""
    torch.manual_seed(0)
    model = build_student(parse_student(SPEC), SHAPE, CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(2):
            for x, y in iter_batches(data.train, batch_size=32):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def quantized(float_student, data):
    """The student prepared for int8 and calibrated on 256 training samples."""
    model = prepare(float_student, QuantScheme())
    calibrate(model, [x for x, _ in iter_batches(data.train, batch_size=128, limit=256)])
    return model


@pytest.fixture(scope="module")
def reference(quantized, data):
    return Reference.from_data(quantized, data.val, data.test)


PENDING_COMPILE = "edgetpu int8: edgetpu_compiler is not on PATH; compile it with: ..."


@pytest.fixture(scope="module")
def int8_chain(quantized, data, reference, tmp_path_factory):
    """The quantized student exported onnx -> tflite at int8 once; the tests below read it."""
    folder = tmp_path_factory.mktemp("int8-chain")
    onnx, tflite = export_chain(
        ["onnx", "tflite"], "int8", quantized, torch.zeros(1, *SHAPE), folder, data,
        context=ExportContext(), reference=reference, pending=[PENDING_COMPILE],
    )  # fmt: skip
    return folder, onnx, tflite


def _output_step(model) -> float:
    return model.model.classifier.out.params()[0]


def assert_within_output_steps(logits: np.ndarray, expected: np.ndarray, step: float) -> None:
    """Integer kernels requantize each layer in fixed point where the fake-quantized model
    rounds float values: an intermediate level now and then differs by one, and after a dozen
    layers a logit may be a few output steps away (measured on the digits: up to 3 steps,
    over 90% of logits within one). A wrong scale or zero point would move all of them."""
    steps = np.round(np.abs(logits - expected) / step)
    assert steps.max() <= MAX_STEPS, np.unique(steps, return_counts=True)
    assert (steps <= 1).mean() >= 0.9, np.unique(steps, return_counts=True)


def _test_samples(data, count: int = 100) -> torch.Tensor:
    return torch.cat([x for x, _ in iter_batches(data.test, limit=count)])


def test_int8_onnx_agrees_with_the_fake_quantized_student_on_real_digits(
    int8_chain, quantized, data
):
    _, onnx, _ = int8_chain
    x = _test_samples(data)
    assert len(x) == 100
    with torch.no_grad():
        expected = quantized(x).numpy()
    logits = onnx_predictions(Path(onnx.path), x)
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.99
    assert_within_output_steps(logits, expected, _output_step(quantized))
    assert onnx.precision == "int8" and onnx.validation == "outputs"
    assert onnx.tolerance == {"min_argmax_agreement": 0.98, "max_accuracy_drop": 0.02}


def test_int8_onnx_holds_quantize_dequantize_nodes_and_int8_weights(int8_chain):
    import onnx as onnx_lib

    from edgedistill.export.onnx_qdq import qdq_summary

    _, onnx, _ = int8_chain
    counts = qdq_summary(Path(onnx.path))
    assert counts["QuantizeLinear"] > 10 and counts["DequantizeLinear"] > counts["QuantizeLinear"]
    graph = onnx_lib.load(onnx.path).graph
    convolutions = [node for node in graph.node if node.op_type in ("Conv", "Gemm")]
    assert counts["weights_8bit"] >= len(convolutions) > 0
    assert counts["weights_uint8"] == counts["weights_8bit"]  # onnxruntime: u8u8 (onnx_qdq.py)
    initializers = {init.name: init.data_type for init in graph.initializer}
    float_weights = [
        node.input[1]
        for node in convolutions
        if initializers.get(node.input[1]) == onnx_lib.TensorProto.FLOAT
    ]
    assert float_weights == [], "every weight reaches its layer through DequantizeLinear"


def test_int8_tflite_is_full_integer_and_matches_the_fake_quantized_student(
    int8_chain, quantized, reference, data
):
    from edgedistill.export.tflite import TfliteRunner

    folder, onnx, tflite = int8_chain
    runner = TfliteRunner(Path(tflite.path))
    assert runner._input["dtype"] == np.int8 and runner._output["dtype"] == np.int8
    assert runner._input["quantization"][0] > 0 and runner._output["quantization"][0] > 0
    assert runner.integer_only_problems() == []
    x = _test_samples(data)
    with torch.no_grad():
        expected = quantized(x).numpy()
    logits = runner.predict(x.numpy())
    assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.99
    assert_within_output_steps(logits, expected, _output_step(quantized))
    assert tflite.path.endswith("model.int8.tflite") and tflite.validation == "outputs"
    assert tflite.argmax_agreement >= 0.98 and tflite.samples_compared == 64
    assert tflite.max_abs_diff <= MAX_STEPS * _output_step(quantized)
    assert reference.student_accuracy > 0.5, "the fixture student learned something"
    assert abs(tflite.accuracy - reference.student_accuracy) <= 0.02
    assert abs(tflite.accuracy - onnx.accuracy) <= 0.01
    assert any(note.startswith("full integer: int8 input (scale") for note in tflite.notes)
    assert PENDING_COMPILE in tflite.notes, "the pending Edge TPU compile rides on the tflite"
    assert not list(folder.glob(".*"))


@pytest.fixture(scope="module")
def fp32_tflite(float_student, tmp_path_factory):
    path = tmp_path_factory.mktemp("fp32") / "model.fp32.tflite"
    EXPORTERS.get("tflite").export(float_student, torch.zeros(1, *SHAPE), path, "fp32")
    return path


def test_integer_only_check_fails_on_a_float_tflite(fp32_tflite, reference):
    from edgedistill.export.tflite import TfliteRunner

    problems = TfliteRunner(fp32_tflite).integer_only_problems()
    assert any(p.startswith("the model input ") and "float32, not int8" in p for p in problems)
    assert any(p.startswith("the model output ") for p in problems)
    conv = [p for p in problems if "CONV_2D computes on float32 inputs" in p]
    assert conv and conv[0].startswith("op "), problems
    claimed = EXPORTERS.get("tflite").validate(
        _artifact(fp32_tflite, "int8"), Reference.from_random(reference.student, SHAPE, 2)
    )
    assert claimed.problems, "an int8 chain would refuse this file"


def test_integer_only_check_names_the_op_a_missing_quantizer_leaves_in_float(quantized, tmp_path):
    """The residual add of the first block without its output quantizer: the add (and the
    convolution it feeds) compute in float between DEQUANTIZE and QUANTIZE ops."""
    from edgedistill.export.tflite import TfliteRunner

    broken = copy.deepcopy(quantized)
    broken.model.features[0].add.out = torch.nn.Identity()
    path = tmp_path / "model.int8.tflite"
    EXPORTERS.get("tflite").export(broken, torch.zeros(1, *SHAPE), path, "int8")
    problems = TfliteRunner(path).integer_only_problems()
    assert any(" ADD computes on float32" in p for p in problems), problems
    assert any(" DEQUANTIZE computes on float32 outputs" in p for p in problems), problems
    assert not any(p.startswith("the model ") for p in problems), "input and output stay int8"


def test_int8_tflite_of_a_squeeze_excite_student_runs_on_tflite_builtin_kernels(tmp_path):
    from edgedistill.export.tflite import TfliteRunner

    torch.manual_seed(0)
    model = prepare(build_student(parse_student(SE_SPEC), SHAPE, CLASSES).eval(), QuantScheme())
    calibrate(model, [torch.randn(16, *SHAPE)])
    path = tmp_path / "model.int8.tflite"
    EXPORTERS.get("tflite").export(model, torch.zeros(1, *SHAPE), path, "int8")
    assert TfliteRunner(path).integer_only_problems() == []


def _artifact(path: Path, precision: str):
    from edgedistill.records.artifact import Artifact

    return Artifact.written("tflite", precision, path, (1, *SHAPE))


def test_int8_chain_refuses_a_float_student_and_fp32_chain_a_quantized_one(
    float_student, quantized, tmp_path
):
    example = torch.zeros(1, *SHAPE)
    with pytest.raises(ValueError, match="prepared student"):
        export_chain(["onnx"], "int8", float_student, example, tmp_path, None)
    with pytest.raises(ValueError, match="float student"):
        export_chain(["onnx"], "fp32", quantized, example, tmp_path, None)
    uncalibrated = prepare(float_student, QuantScheme())
    with pytest.raises(ValueError, match="not calibrated"):
        export_chain(["onnx"], "int8", uncalibrated, example, tmp_path, None)


def test_coral_int8_chain_builds_onnx_and_tflite_and_leaves_the_compile_pending(monkeypatch):
    from edgedistill.export import edgetpu

    monkeypatch.setattr(edgetpu.shutil, "which", lambda name: None)
    profile = load_profile("coral-edgetpu")
    plan = plan_chain(deploy_formats(profile), "int8", ExportContext.for_profile(profile))
    assert [(s.format, s.precision) for s in plan.steps] == [("onnx", "int8"), ("tflite", "int8")]
    (line,) = plan.pending
    assert line.startswith("edgetpu int8: edgetpu_compiler is not on PATH")
    assert "model.int8.tflite is written here" in line
    assert line.endswith("edgetpu_compiler -s -o . model.int8.tflite")


class FloatOnlyExporter:
    """A stand-in format that writes fp32 and fp16 only, as Core ML did before int8."""

    name = "floatonly"
    runs_on = "floatonly"
    suffix = ".bin"
    precisions = ("fp32", "fp16")
    consumes = None
    compiles_for_runtime = None
    hub = False
    extra = None
    modules = ()
    tools = ()
    validated_on = "nowhere"

    def check(self, precision, context):
        return None


def test_int8_chain_leaves_a_float_only_format_pending_unless_it_was_asked_for(monkeypatch):
    monkeypatch.setitem(EXPORTERS._entries, "floatonly", FloatOnlyExporter())
    plan = plan_chain(["onnx", "floatonly"], "int8", ExportContext(), explicit=False)
    assert plan.formats == ["onnx"]
    assert plan.pending == ["floatonly fp32, fp16: needs fp32, fp16; this run produces int8"]
    with pytest.raises(UserInputError, match="--precision int8: the floatonly exporter writes"):
        plan_chain(["onnx", "floatonly"], "int8", ExportContext(), explicit=True)


def test_preflight_int8_converts_a_calibrated_copy_and_leaves_the_student_float(float_student):
    from edgedistill.export.preflight import preflight

    x = torch.randn(2, *SHAPE)
    with torch.no_grad():
        before = float_student(x)
    preflight(["tflite"], "int8", float_student, torch.zeros(1, *SHAPE), ExportContext())
    assert not is_quantized(float_student)
    with torch.no_grad():
        assert torch.equal(float_student(x), before)


@pytest.mark.parametrize(
    ("layer", "named"), [(torch.nn.GELU(), "1 (GELU)"), (torch.nn.LayerNorm(32), "1 (LayerNorm)")]
)
def test_preflight_refuses_a_layer_with_no_int8_kernel_naming_it(layer, named):
    from edgedistill.export.preflight import preflight

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        layer,
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, CLASSES),
    )
    with pytest.raises(UserInputError) as error:
        preflight(["onnx", "tflite"], "int8", model, torch.zeros(1, *SHAPE), ExportContext())
    assert error.value.exit_code == 2
    message = str(error.value)
    assert message.startswith("--precision int8: ") and named in message
    assert "no int8 kernel" in message


@pytest.fixture(scope="module")
def quantized_checkpoint(quantized, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("qrun") / "checkpoint"
    folder.mkdir()
    save_quantized(folder, quantized, QuantScheme(), dict(META))
    return folder


def test_export_of_a_quantized_checkpoint_writes_validated_int8_artifacts(
    quantized_checkpoint, int8_chain
):
    out = quantized_checkpoint.parent / "exported"
    result = invoke(  # onnx only: the int8 TFLite of the same model is checked above
        "export", str(quantized_checkpoint), "--formats", "onnx", "--precision", "int8",
        "--task", str(TINY_RECIPE), "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["precision"] == "int8" and "quantized int8" in document["source"]
    (exported,) = document["artifacts"]
    assert (exported["format"], exported["precision"]) == ("onnx", "int8")
    assert exported["validation"] == "outputs" and exported["argmax_agreement"] >= 0.98
    _, onnx, _ = int8_chain
    assert exported["accuracy"] == onnx.accuracy, "the model the checkpoint was saved from"
    assert exported["max_abs_diff"] == onnx.max_abs_diff
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.int8.onnx"]


def test_export_of_a_quantized_checkpoint_defaults_to_int8(quantized_checkpoint, tmp_path):
    from edgedistill.export.run import ExportRequest, plan_export

    plan = plan_export(
        ExportRequest(str(quantized_checkpoint), tmp_path / "out", formats=["tflite"])
    )
    assert plan.precision == "int8" and is_quantized(plan.source.module)
    assert plan.source.scheme == QuantScheme()


def test_export_refuses_fp32_for_a_quantized_checkpoint(quantized_checkpoint, tmp_path):
    result = invoke(
        "export", str(quantized_checkpoint), "--formats", "tflite", "--precision", "fp32",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--precision fp32:" in result.stderr and "is quantized (int8)" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_export_refuses_int8_for_an_fp32_checkpoint(float_student, tmp_path):
    from edgedistill.students.checkpoint import save_weights

    folder = tmp_path / "checkpoint"
    folder.mkdir()
    save_weights(folder, float_student, dict(META))
    result = invoke(
        "export", str(folder), "--formats", "tflite", "--precision", "int8",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "--precision int8:" in message and "is not quantized" in message
    assert "calibration data" in message and "edgedistill fit --precision int8" in message
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
