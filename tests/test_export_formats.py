"""Round trips of each exporter on a tiny student: TFLite run by the LiteRT interpreter, Core ML
checked structurally (predictions need macOS), both against the PyTorch student."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.export import EXPORTERS, ExportContext
from edgedistill.export.chain import export_chain
from edgedistill.export.validate import Reference
from tests.conftest import TINY_RECIPE

SHAPE = (1, 32, 32)


@pytest.fixture(scope="module")
def task():
    from edgedistill.tasks.data import load_task_data
    from edgedistill.tasks.task import load_recipe

    recipe = load_recipe(str(TINY_RECIPE))
    return recipe, load_task_data(recipe)


@pytest.fixture(scope="module")
def student(task):
    """A tiny student trained for a few steps, so its logits and accuracy mean something."""
    from edgedistill.students import build_student, parse_student
    from edgedistill.tasks.data import iter_batches

    _, data = task
    torch.manual_seed(0)
    model = build_student(parse_student("mbv2:d=1,r=16,w=0.5"), SHAPE, 10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model.train()
    for _ in range(3):
        for x, y in iter_batches(data.train, batch_size=64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def reference(student, task):
    _, data = task
    return Reference.from_data(student, data.val, data.test)


def _context(task, target="iOS17"):
    recipe, _ = task
    return ExportContext(
        preprocessing=recipe.preprocessing,
        labels=tuple(recipe.labels),
        min_deployment_target=target,
    )


@pytest.fixture(scope="module")
def fp32_chain(student, task, reference, tmp_path_factory):
    """The student exported onnx -> tflite fp32 once; the tflite tests below read it."""
    _, data = task
    folder = tmp_path_factory.mktemp("fp32-chain")
    onnx, tflite = export_chain(
        ["onnx", "tflite"], "fp32", student, torch.zeros(1, *SHAPE), folder, data,
        context=_context(task), reference=reference,
    )  # fmt: skip
    return folder, onnx, tflite


def test_tflite_fp32_runs_in_litert_and_matches_the_student(fp32_chain, reference):
    folder, onnx, tflite = fp32_chain
    assert tflite.path.endswith("model.fp32.tflite") and tflite.validation == "outputs"
    assert tflite.validated_with.startswith("ai-edge-litert")
    assert tflite.max_abs_diff <= tflite.tolerance["max_abs_diff"]
    assert tflite.argmax_agreement == 1.0 and tflite.samples_compared == 64
    assert reference.student_accuracy > 0.3, "the fixture student learned something"
    assert abs(tflite.accuracy - reference.student_accuracy) <= 0.005
    assert tflite.accuracy == onnx.accuracy
    assert len(tflite.sha256) == 64 and not list(folder.glob(".*"))


def test_tflite_fp16_holds_fp16_weights_and_agrees_with_the_student(
    student, reference, fp32_chain, tmp_path
):
    from edgedistill.export.tflite import TfliteRunner

    folder, _, fp32 = fp32_chain
    exporter = EXPORTERS.get("tflite")
    fp16 = exporter.export(student, torch.zeros(1, *SHAPE), tmp_path / "b.tflite", "fp16")
    assert fp16.bytes < fp32.bytes
    assert TfliteRunner(tmp_path / "b.tflite").weight_precision_problems("fp16") == []
    assert TfliteRunner(folder / "model.fp32.tflite").weight_precision_problems("fp16") != []
    validation = exporter.validate(fp16, reference)
    assert validation.problems == ()
    assert validation.argmax_agreement >= 0.98
    assert 0 < validation.max_abs_diff < 0.1  # fp16 weights do change the logits a little


@pytest.fixture(scope="module")
def coreml_packages(student, task, tmp_path_factory):
    """The student as Core ML fp16 and fp32 packages, exported once for the tests below."""
    exporter = EXPORTERS.get("coreml")
    folder = tmp_path_factory.mktemp("coreml")
    return {
        precision: exporter.export(
            student,
            torch.zeros(1, *SHAPE),
            folder / f"m-{precision}{exporter.suffix}",
            precision,
            _context(task),
        )
        for precision in ("fp16", "fp32")
    }


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_coreml_package_is_checked_structurally_off_macos(
    coreml_packages, task, reference, precision, tmp_path
):
    import coremltools as ct

    from edgedistill.export.coreml import unzip_package

    artifact = coreml_packages[precision]
    with zipfile.ZipFile(artifact.path) as archive:
        roots = {name.split("/")[0] for name in archive.namelist()}
    assert roots == {f"m-{precision}.mlpackage"}
    validation = EXPORTERS.get("coreml").validate(artifact, reference)
    assert validation.kind == "structural" and validation.problems == ()
    package = unzip_package(Path(artifact.path), tmp_path)
    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    (model_input,) = spec.description.input
    image = model_input.type.imageType
    assert model_input.name == "input" and (image.width, image.height) == (32, 32)
    assert spec.description.output[0].name == "logits"
    metadata = spec.description.metadata.userDefined
    assert metadata["precision"] == precision and '"scale":0.0625' in metadata["preprocessing"]
    recipe, _ = task
    assert json.loads(metadata["labels"]) == recipe.labels
    assert spec.specificationVersion <= ct.target.iOS17.value


def test_coreml_image_input_applies_the_task_preprocessing(student, task):
    """The per-channel 1/std folded into the model plus Core ML's scale and bias reproduce the
    recipe's (pixel * scale - mean) / std exactly."""
    from edgedistill.export.coreml import _with_inverse_std, image_input_for

    recipe, _ = task
    image = image_input_for(recipe.preprocessing, 1)
    pixels = torch.randint(0, 17, (4, *SHAPE)).float()
    core_ml_side = pixels * image["scale"] + image["bias"]
    with torch.no_grad():
        wrapped = _with_inverse_std(student, image["inverse_std"])(core_ml_side)
        pre = recipe.preprocessing
        expected = student((pixels * pre.scale - pre.mean[0]) / pre.std[0])
    assert torch.allclose(wrapped, expected, atol=1e-5)


def test_coreml_structural_check_catches_a_precision_that_was_not_delivered(
    coreml_packages, reference
):
    claimed = coreml_packages["fp32"].model_copy(update={"precision": "fp16"})
    validation = EXPORTERS.get("coreml").validate(claimed, reference)
    assert any("FLOAT32 weights" in problem for problem in validation.problems)


def test_onnx_reference_figures_are_those_of_onnxruntime(student, reference, tmp_path):
    from edgedistill.export.validate import onnx_predictions

    exporter = EXPORTERS.get("onnx")
    artifact = exporter.export(student, torch.zeros(1, *SHAPE), tmp_path / "m.onnx", "fp32")
    validation = exporter.validate(artifact, reference)
    logits = onnx_predictions(tmp_path / "m.onnx", reference.compare_x)
    assert validation.max_abs_diff == pytest.approx(float(np.abs(logits - reference.logits).max()))
