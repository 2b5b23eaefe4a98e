"""Export planning: chains per profile, pending formats with their build commands, and every
up-front refusal (precision, missing extra, Core ML target, unknown format)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch
import yaml

from edgedistill.errors import MissingExtraError, UserInputError
from edgedistill.export import ExportContext
from edgedistill.export.chain import deploy_formats, export_chain, order_formats, plan_chain
from edgedistill.profiles import load_profile

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


def _plan(device: str, precision: str, explicit: bool = False):
    profile = load_profile(device)
    return plan_chain(
        deploy_formats(profile), precision, ExportContext.for_profile(profile), explicit=explicit
    )


def test_jetson_chain_writes_the_onnx_and_leaves_the_engine_pending_with_its_build_command():
    from edgedistill.export.tensorrt import cuda_device_count, device_build_argv

    if cuda_device_count():
        pytest.skip("this host has a GPU: the engine is built here")
    plan = _plan("jetson-orin-nano", "fp16")
    assert [(s.format, s.precision) for s in plan.steps] == [("onnx", "fp32")]
    assert plan.deploy_format == "tensorrt"
    (line,) = plan.pending
    assert line.startswith("tensorrt fp16: engine pending a device")
    argv = device_build_argv("model.fp32.onnx", "model.fp16.engine", "fp16")
    assert shlex.join(argv) in line
    assert "trtexec --onnx=model.fp32.onnx --saveEngine=model.fp16.engine --fp16" in line


def test_iphone_chain_keeps_the_onnx_hub_at_fp32_and_writes_coreml_fp16():
    plan = _plan("iphone-15-pro", "fp16")
    assert [(s.format, s.precision) for s in plan.steps] == [("onnx", "fp32"), ("coreml", "fp16")]
    assert plan.pending == []


def test_coral_chain_adds_the_edge_tpu_compiler_after_tflite_and_leaves_it_pending():
    assert deploy_formats(load_profile("coral-edgetpu")) == ["onnx", "tflite", "edgetpu"]
    plan = _plan("coral-edgetpu", "fp32")
    assert plan.formats == ["onnx", "tflite"]
    assert plan.deploy_format == "edgetpu"
    assert plan.pending == ["edgetpu int8: needs int8; this run produces fp32"]


def test_a_format_is_placed_after_the_one_it_is_built_from():
    assert order_formats(["edgetpu", "onnx"]) == ["tflite", "edgetpu", "onnx"]
    assert order_formats(["tensorrt"]) == ["onnx", "tensorrt"]


def test_unknown_format_is_refused_with_a_suggestion():
    with pytest.raises(UserInputError, match=r"--formats: unknown export format 'tfilte'.*tflite"):
        order_formats(["onnx", "tfilte"])


def test_asked_precision_a_format_cannot_write_is_refused_naming_it():
    with pytest.raises(UserInputError, match=r"--precision fp16: the edgetpu exporter writes int8"):
        plan_chain(["onnx", "tflite", "edgetpu"], "fp16", ExportContext(), explicit=True)


def test_fp16_with_no_format_that_writes_it_is_refused():
    with pytest.raises(UserInputError, match=r"none of the formats onnx writes fp16.*tflite"):
        plan_chain(["onnx"], "fp16", ExportContext(), explicit=True)


@pytest.mark.parametrize(
    ("fmt", "module", "extra"),
    [("tflite", "litert_torch", "tflite"), ("coreml", "coremltools", "coreml")],
)
def test_missing_extra_is_refused_before_anything_runs(monkeypatch, fmt, module, extra):
    from edgedistill.export import _extras

    real = _extras.has_module
    monkeypatch.setattr(_extras, "has_module", lambda name: name != module and real(name))
    with pytest.raises(MissingExtraError) as error:
        plan_chain(["onnx", fmt], "fp16", ExportContext(), explicit=True)
    assert f"pip install 'edgedistill[{extra}]'" in str(error.value)
    assert repr(module) in str(error.value)


def _profile_with_target(tmp_path: Path, target: str) -> Path:
    document = yaml.safe_load((PROFILES / "iphone-15-pro.yaml").read_text())
    document["constraints"]["min_deployment_target"] = target
    path = tmp_path / "old-iphone.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_core_ml_target_older_than_ml_programs_is_refused_naming_the_profile_field(tmp_path):
    profile = load_profile(str(_profile_with_target(tmp_path, "iOS14")))
    with pytest.raises(UserInputError) as error:
        plan_chain(deploy_formats(profile), "fp16", ExportContext.for_profile(profile))
    message = str(error.value)
    assert "constraints.min_deployment_target iOS14" in message
    assert "iOS15" in message and "ML program" in message


@pytest.mark.parametrize(("target", "why"), [("iOS99", "does not know"), ("ios17", "not a Core")])
def test_core_ml_target_that_does_not_exist_is_refused(target, why):
    context = ExportContext(min_deployment_target=target)
    with pytest.raises(UserInputError, match=f"--min-deployment-target '{target}': .*{why}"):
        plan_chain(["onnx", "coreml"], "fp16", context)


def test_pending_engine_note_travels_on_the_onnx_artifact(tmp_path):
    from edgedistill.students import build_student, parse_student

    student = build_student(parse_student("mbv2:d=1,r=16,w=0.25"), (1, 32, 32), 10)
    line = "tensorrt fp16: engine pending a device; build it there"
    (artifact,) = export_chain(
        ["onnx"], "fp16", student, torch.zeros(1, 1, 32, 32), tmp_path, None, pending=[line]
    )
    assert artifact.precision == "fp32" and line in artifact.notes
    assert artifact.validation == "outputs" and artifact.max_abs_diff < 1e-4
