"""Core ML int8 (W8A16 on iOS16, W8A8 on iOS17+) and int4 (iOS18+) from a prepared, calibrated
student: real coremltools conversions, read back from the saved package and compared with the
int8 weights and scales of the PyTorch side. Core ML cannot run here, so the checks are
structural, and a package declared int8 that holds float weights must fail them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS, ExportContext
from edgedistill.export.validate import Reference
from tests.conftest import TINY_RECIPE

pytest.importorskip("coremltools")

SHAPE = (1, 32, 32)
EXAMPLE = torch.zeros(1, *SHAPE)


@pytest.fixture(scope="module")
def float_student():
    from edgedistill.students import build_student, parse_student

    torch.manual_seed(0)
    model = build_student(parse_student("mbv2:d=1,r=16,w=0.5"), SHAPE, 10)  # ~13k params
    with torch.no_grad():  # batch norm statistics that are not the identity, to fold
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def prepared(float_student):
    """The student batch-norm folded, fake-quantized and calibrated on seeded random batches."""
    from edgedistill.quant.prepare import calibrate, prepare
    from edgedistill.quant.scheme import QuantScheme

    model = prepare(float_student, QuantScheme())
    generator = torch.Generator().manual_seed(1)
    calibrate(model, [torch.randn(16, *SHAPE, generator=generator) for _ in range(4)])
    return model


@pytest.fixture(scope="module")
def reference(prepared):
    return Reference.from_random(prepared, SHAPE, samples=8)


@pytest.fixture(scope="module")
def image_context():
    from edgedistill.tasks.task import load_recipe

    recipe = load_recipe(str(TINY_RECIPE))
    return ExportContext(
        preprocessing=recipe.preprocessing, labels=tuple(recipe.labels), device="test-phone"
    )


@pytest.fixture(scope="module")
def packages(prepared, image_context, tmp_path_factory):
    """int8 for iOS16 (tensor input), iOS17 (image input) and iOS18 (constexpr ops of iOS18),
    int4 for iOS18: exported once."""
    from dataclasses import replace

    from edgedistill.export.coreml import export_int4

    folder = tmp_path_factory.mktemp("coreml-int8")
    exporter = EXPORTERS.get("coreml")
    return {
        "W8A16": exporter.export(
            prepared, EXAMPLE, folder / "w8a16.mlpackage.zip", "int8",
            ExportContext(min_deployment_target="iOS16"),
        ),
        "W8A8": exporter.export(
            prepared, EXAMPLE, folder / "w8a8.mlpackage.zip", "int8",
            replace(image_context, min_deployment_target="iOS17"),
        ),
        "W8A8-iOS18": exporter.export(
            prepared, EXAMPLE, folder / "w8a8-ios18.mlpackage.zip", "int8",
            ExportContext(min_deployment_target="iOS18"),
        ),
        "W4A16": export_int4(
            prepared, EXAMPLE, folder / "model.int4.mlpackage.zip",
            ExportContext(min_deployment_target="iOS18"),
        ),
    }  # fmt: skip


def _unzipped(artifact, tmp_path: Path) -> Path:
    from edgedistill.export.coreml import unzip_package

    return unzip_package(Path(artifact.path), tmp_path)


def _spec(package: Path):
    import coremltools as ct

    return ct.models.MLModel(str(package), skip_model_load=True).get_spec()


def _our_int8_weights(prepared):
    """(int8 weight, per-channel scale) of every conv / linear layer, in model order."""
    from edgedistill.quant.fake import classes

    weighted = classes()["QuantWeighted"]
    found = []
    for module in prepared.modules():
        if isinstance(module, weighted):
            q, scales, _ = module.int8_weight()
            found.append((q.numpy(), scales.numpy()))
    return found


def test_int8_for_ios16_stores_our_int8_weights_and_scales_and_fp16_activations(
    packages, prepared, reference, tmp_path
):
    from edgedistill.export.coreml_quant import quantize_op_count, read_quantized_weights

    artifact = packages["W8A16"]
    assert artifact.precision == "int8" and artifact.path.endswith("w8a16.mlpackage.zip")
    assert any(note.startswith("int8 weights only (W8A16)") for note in artifact.notes)
    package = _unzipped(artifact, tmp_path)
    stored = read_quantized_weights(package)
    ours = _our_int8_weights(prepared)
    assert len(stored) == len(ours) == 14  # 13 convolutions and the classifier
    for (name, data, scale), (q, our_scale) in zip(stored, ours, strict=True):
        assert data.dtype == np.int8 and np.array_equal(data, q), name
        # coremltools recomputes max|w|/127 from the fp16 weights: our scale to fp16 rounding
        np.testing.assert_allclose(np.asarray(scale).reshape(-1), our_scale, rtol=1e-3)
    spec = _spec(package)
    assert spec.specificationVersion == 7  # loads on iOS16
    assert quantize_op_count(spec) == 0
    metadata = spec.description.metadata.userDefined
    assert (metadata["precision"], metadata["quantization"]) == ("int8", "W8A16")
    assert metadata["min_deployment_target"] == "iOS16"
    validation = EXPORTERS.get("coreml").validate(artifact, reference)
    assert validation.kind == "structural" and validation.problems == ()


@pytest.mark.parametrize(("package", "spec_version"), [("W8A8", 8), ("W8A8-iOS18", 9)])
def test_int8_for_ios17_and_later_is_w8a8_with_our_weight_and_activation_scales(
    packages, prepared, reference, tmp_path, package, spec_version
):
    from edgedistill.export.coreml_quant import read_program, read_quantized_weights
    from edgedistill.quant.fake import classes

    artifact = packages[package]
    assert any(note.startswith("int8 weights and activations (W8A8)") for note in artifact.notes)
    folder = _unzipped(artifact, tmp_path)
    for (name, data, scale), (q, our_scale) in zip(
        read_quantized_weights(folder), _our_int8_weights(prepared), strict=True
    ):
        assert data.dtype == np.int8 and np.array_equal(data, q), name
        scale = np.asarray(scale).reshape(-1)
        assert np.array_equal(scale, our_scale.astype(np.float16)), name  # ours, stored fp16
    operations = [op for f in read_program(folder).functions.values() for op in f.operations]
    quantize_ops = [op for op in operations if op.op_type == "quantize"]
    program_scales = {
        float(op.scale.val) for op in operations if op.op_type in ("quantize", "dequantize")
    }
    our_activation_scales = {
        float(np.float16(module.params()[0]))
        for module in prepared.modules()
        if isinstance(module, classes()["ActQuant"])
    }
    # One quantize op per activation quantizer. coremltools moves one input scale of an add
    # into its output quantize op (distributive_quantized_binary_op_scale_normalization), so
    # each of our scales is found on a quantize or on a dequantize op.
    assert len(quantize_ops) == len(our_activation_scales) == 18
    assert our_activation_scales <= program_scales
    spec = _spec(folder)
    assert spec.specificationVersion == spec_version  # iOS17+: MIL quantize / dequantize ops
    image = spec.description.input[0].type.WhichOneof("Type") == "imageType"
    assert image == (package == "W8A8")  # the iOS17 package was given the task's preprocessing
    assert spec.description.metadata.userDefined["quantization"] == "W8A8"
    validation = EXPORTERS.get("coreml").validate(artifact, reference)
    assert validation.kind == "structural" and validation.problems == ()


def test_int4_for_ios18_stores_int4_weights_per_block_where_the_channels_allow(
    packages, reference, tmp_path
):
    from edgedistill.export.coreml_quant import BLOCK_SIZE, read_quantized_weights

    artifact = packages["W4A16"]
    assert artifact.precision == "int4" and artifact.path.endswith("model.int4.mlpackage.zip")
    package = _unzipped(artifact, tmp_path)
    stored = read_quantized_weights(package)
    assert len(stored) == 14
    per_block = 0
    for name, data, scale in stored:
        assert data.min() >= -7 and data.max() <= 7, name  # symmetric int4
        inputs, blocks = data.shape[1], np.asarray(scale).reshape(data.shape[0], -1).shape[1]
        # one scale per BLOCK_SIZE input channels where they divide, else one per output channel
        assert blocks == (inputs // BLOCK_SIZE if inputs % BLOCK_SIZE == 0 else 1), name
        per_block += inputs % BLOCK_SIZE == 0
    assert per_block >= 3, "the fixture student has layers wide enough for blocks"
    spec = _spec(package)
    assert spec.specificationVersion == 9  # iOS18
    assert spec.description.metadata.userDefined["quantization"] == "W4A16"
    validation = EXPORTERS.get("coreml").validate(artifact, reference)
    assert validation.kind == "structural" and validation.problems == ()


def test_package_declared_int8_that_holds_float_weights_fails_the_check(
    float_student, packages, reference, tmp_path
):
    exporter = EXPORTERS.get("coreml")
    fp16 = exporter.export(float_student, EXAMPLE, tmp_path / "f.mlpackage.zip", "fp16")
    claimed = fp16.model_copy(update={"precision": "int8"})
    problems = exporter.validate(claimed, reference).problems
    assert "int8 model holds FLOAT16 weights" in problems
    assert "the package says it is fp16, the artifact int8" in problems
    int4_as_int8 = packages["W4A16"].model_copy(update={"precision": "int8"})
    assert "int8 model holds INT4 weights" in exporter.validate(int4_as_int8, reference).problems


def test_package_declared_w8a8_without_quantize_ops_fails_the_check(packages, tmp_path):
    from edgedistill.export.coreml_quant import weight_problems

    spec = _spec(_unzipped(packages["W8A16"], tmp_path))
    assert weight_problems(spec, "int8", "W8A16") == []
    assert weight_problems(spec, "int8", "W8A8") == [
        "declared W8A8 (int8 activations) but the program quantizes none"
    ]


def test_int8_chain_writes_onnx_and_coreml_from_one_prepared_student(prepared, reference, tmp_path):
    from edgedistill.export.chain import export_chain, plan_chain

    context = ExportContext(min_deployment_target="iOS17")
    plan = plan_chain(["onnx", "coreml"], "int8", context)
    assert [(s.format, s.precision) for s in plan.steps] == [("onnx", "int8"), ("coreml", "int8")]
    onnx, coreml = export_chain(
        plan.formats, "int8", prepared, EXAMPLE, tmp_path, None,
        context=context, reference=reference,
    )  # fmt: skip
    assert Path(coreml.path).name == "model.int8.mlpackage.zip"
    assert coreml.validation == "structural" and onnx.validation == "outputs"
    assert len(coreml.sha256) == 64


def test_int8_defaults_to_ios16_and_refuses_older_targets_naming_the_field():
    from edgedistill.export.chain import plan_chain
    from edgedistill.export.coreml import target_name

    assert target_name(ExportContext(), "int8") == "iOS16"
    assert target_name(ExportContext(), "fp16") == "iOS15"
    context = ExportContext(
        min_deployment_target="iOS15",
        min_deployment_target_origin="profile p: constraints.min_deployment_target",
    )
    with pytest.raises(UserInputError) as error:
        plan_chain(["onnx", "coreml"], "int8", context)
    message = str(error.value)
    assert message.startswith("profile p: constraints.min_deployment_target iOS15")
    assert "int8 weights" in message and "iOS16" in message


def test_int4_needs_ios18_and_is_not_a_precision_flag(prepared, tmp_path):
    from edgedistill.export.coreml import export_int4

    with pytest.raises(UserInputError, match=r"int4 model stores int4 per-block weights.*iOS18"):
        export_int4(
            prepared,
            EXAMPLE,
            tmp_path / "m.mlpackage.zip",
            ExportContext(min_deployment_target="iOS17"),
        )
    exporter = EXPORTERS.get("coreml")
    with pytest.raises(
        UserInputError, match=r"--precision int4: the coreml exporter writes fp32, fp16, int8"
    ):
        exporter.export(prepared, EXAMPLE, tmp_path / "m.mlpackage.zip", "int4")
    assert not list(tmp_path.iterdir())


def test_int8_takes_a_prepared_student_and_fp16_a_float_one(float_student, prepared, tmp_path):
    exporter = EXPORTERS.get("coreml")
    with pytest.raises(ValueError, match="prepared, calibrated student"):
        exporter.export(float_student, EXAMPLE, tmp_path / "a.mlpackage.zip", "int8")
    with pytest.raises(ValueError, match="takes the float student"):
        exporter.export(prepared, EXAMPLE, tmp_path / "b.mlpackage.zip", "fp16")
