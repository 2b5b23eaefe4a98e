"""int8 text students (quant/encoder_plan.py): every linear layer int8 (input, per-channel
weights, output), the embeddings, LayerNorm, softmax and GELU in float; exported to ONNX (QDQ,
run by onnxruntime's int8 kernels), TFLite (int8 fully connected ops, run by LiteRT) and Core ML
(W8A16 and W8A8), each compared with the fake-quantized student on the fortunes task's texts."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS, ExportContext
from edgedistill.export.validate import Reference
from edgedistill.inputs import example_input
from edgedistill.quant.fake import classes, float_model
from edgedistill.quant.prepare import calibrate, prepare, unquantizable_layers
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import build_student, parse_student
from edgedistill.tasks.data import iter_batches
from tests.conftest import TINY_TEXT_RECIPE

pytest.importorskip("transformers", reason="text tasks need the text extra")

CLASSES = 4
EXAMPLE = example_input((32,))  # the task's 32 tokens
HEADS = 2  # two heads: the attention matmuls are batched, as in every student of the space


@pytest.fixture(scope="module")
def fortunes():
    from edgedistill.tasks.task import load_task

    return load_task(str(TINY_TEXT_RECIPE)).data


@pytest.fixture(scope="module")
def student(fortunes):
    torch.manual_seed(0)
    vocabulary = fortunes.vocabulary.size
    spec = f"tfm:l=2,h=64,a={HEADS},i=128,v={vocabulary}"
    return build_student(parse_student(spec), fortunes.input_shape, CLASSES).eval()


@pytest.fixture(scope="module")
def prepared(student, fortunes):
    """The student prepared for int8 and calibrated on 256 train texts."""
    model = prepare(student, QuantScheme())
    calibrate(model, (x for x, _ in iter_batches(fortunes.train, limit=256)))
    return model


@pytest.fixture(scope="module")
def reference(prepared, fortunes):
    return Reference.from_data(prepared, fortunes.val, fortunes.test)


def _linear_count(model) -> int:
    return sum(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_prepare_makes_every_linear_layer_int8_and_leaves_the_rest_float(student, prepared):
    weighted, act = classes()["QuantWeighted"], classes()["ActQuant"]
    layers = [m for m in prepared.modules() if isinstance(m, weighted)]
    assert prepared.plan == "encoder" and len(layers) == _linear_count(student) == 14
    assert all(isinstance(layer.input, act) and isinstance(layer.out, act) for layer in layers)
    assert prepared.input is None, "token ids are indices: never quantized"
    kinds = {type(m).__name__ for m in prepared.modules() if not list(m.children())}
    assert {"Embedding", "LayerNorm", "Softmax", "GELU"} <= kinds
    assert float_model(prepared).vocab_size == student.vocab_size
    quantizers = [m for m in prepared.modules() if isinstance(m, act)]
    assert all(float(q.low) <= float(q.high) for q in quantizers), "every range was calibrated"


def test_the_fake_quantized_student_stays_close_to_the_float_one(student, prepared, fortunes):
    (x, _), *_ = iter_batches(fortunes.val, limit=64)
    with torch.no_grad():
        float_logits, int8_logits = student(x), prepared(x)
    assert (float_logits.argmax(1) == int8_logits.argmax(1)).float().mean() >= 0.9
    assert not torch.equal(float_logits, int8_logits), "the int8 grid is in the forward pass"


def test_a_token_model_with_a_layer_the_plan_does_not_know_is_refused_by_name():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Conv1d(8, 8, 3))
    assert unquantizable_layers(model) == ["1 (Conv1d)"]
    with pytest.raises(UserInputError, match=r"1 \(Conv1d\)"):
        prepare(model, QuantScheme())


def test_int8_onnx_runs_int8_kernels_in_onnxruntime_and_matches_the_student(
    prepared, reference, tmp_path
):
    import onnxruntime as ort

    from edgedistill.export.onnx_qdq import qdq_summary

    exporter = EXPORTERS.get("onnx")
    artifact = exporter.export(prepared, EXAMPLE, tmp_path / "model.int8.onnx", "int8")
    assert any("int8 linear layers" in note for note in artifact.notes)
    counts = qdq_summary(Path(artifact.path))
    assert counts["weights_8bit"] == counts["weights_uint8"] == 14
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(artifact.path, options, providers=["CPUExecutionProvider"])
    import onnx

    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    ops = collections.Counter(node.op_type for node in optimized.graph.node)
    assert ops["QGemm"] + ops["QLinearMatMul"] >= 14 - 1, ops  # onnxruntime's int8 kernels
    validation = exporter.validate(artifact, reference)
    assert validation.argmax_agreement >= 0.98 and validation.problems == ()
    assert validation.accuracy == pytest.approx(reference.student_accuracy, abs=0.02)


def test_int8_tflite_has_int8_fully_connected_layers_and_matches_the_student(
    prepared, reference, tmp_path
):
    from ai_edge_litert.interpreter import Interpreter

    exporter = EXPORTERS.get("tflite")
    artifact = exporter.export(prepared, EXAMPLE, tmp_path / "m.int8.tflite", "int8")
    assert any("token ids fed as they are" in note for note in artifact.notes)
    interpreter = Interpreter(model_path=artifact.path)
    assert interpreter.get_input_details()[0]["dtype"] == np.int32  # token ids
    int8_linear = [
        op
        for op in interpreter._get_ops_details()
        if op["op_name"] == "FULLY_CONNECTED"
        and [np.dtype(t).name for t in op["operand_types"][:2]] == ["int8", "int8"]
    ]
    assert len(int8_linear) == 14
    validation = exporter.validate(artifact, reference)
    assert validation.problems == () and validation.argmax_agreement >= 0.98


@pytest.mark.parametrize(("target", "label"), [("iOS16", "W8A16"), ("iOS17", "W8A8")])
def test_core_ml_int8_stores_our_int8_linear_weights(prepared, reference, tmp_path, target, label):
    pytest.importorskip("coremltools")
    from edgedistill.export.coreml import unzip_package
    from edgedistill.export.coreml_quant import read_quantized_weights

    exporter = EXPORTERS.get("coreml")
    artifact = exporter.export(
        prepared, EXAMPLE, tmp_path / "m.mlpackage.zip", "int8",
        ExportContext(min_deployment_target=target),
    )  # fmt: skip
    assert any(f"({label})" in note for note in artifact.notes)
    stored = read_quantized_weights(unzip_package(Path(artifact.path), tmp_path))
    ours = [
        module.int8_weight()[0].numpy()
        for module in prepared.modules()
        if isinstance(module, classes()["QuantWeighted"])
    ]
    linear = [data for _, data, _ in stored if data.ndim == 2 and data.shape[0] != 1]
    assert any(np.array_equal(data, ours[0]) for data in linear), "our int8 values, stored"
    assert sum(data.dtype == np.int8 for data in linear) >= len(ours)
    validation = exporter.validate(artifact, reference)
    assert validation.kind == "structural" and validation.problems == ()
