"""Quantization-aware distillation: the fake-quantized student, calibration, PTQ, QAT with the
teacher, its checkpoint and resume, and how fit plans int8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_RECIPE, invoke

STUDENT = "mbv2:d=1,e=3,k=3,r=16,se=1,w=0.25"


def test_scales_keep_relu6_levels_inside_the_clamp():
    import numpy as np

    from edgedistill.quant.fake import activation_params

    scale, zero_point = activation_params(0.0, 6.0, symmetric=False)
    assert zero_point == -128
    assert np.float32(scale) * np.float32(255) <= np.float32(6.0)
    assert activation_params(-1.0, 3.0, symmetric=True) == (pytest.approx(3.0 / 127), 0)
    low_scale, low_zero = activation_params(-2.0, 2.0, symmetric=False)
    assert -128 < low_zero < 127 and low_scale == pytest.approx(4.0 / 255, rel=1e-6)


def test_prepare_folds_batch_norm_without_changing_the_function():
    import torch

    from edgedistill.quant.prepare import prepare
    from edgedistill.quant.scheme import QuantScheme
    from edgedistill.students import build_student, parse_student

    torch.manual_seed(0)
    model = build_student(parse_student(STUDENT), (1, 32, 32), 10)
    for module in model.modules():  # non-trivial statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.3, 0.3)
    model.eval()
    prepared = prepare(model, QuantScheme())  # observe mode: quantizers pass values through
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(prepared(x), model(x), atol=1e-5)
    names = [type(m).__name__ for m in prepared.modules()]
    assert "BatchNorm2d" not in names and "QuantWeighted" in names


def test_prepare_refuses_a_layer_without_an_int8_kernel_by_name():
    from torch import nn

    from edgedistill.errors import UserInputError
    from edgedistill.quant.prepare import prepare
    from edgedistill.quant.scheme import QuantScheme

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GELU(), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(UserInputError, match=r"1 \(GELU\)"):
        prepare(model, QuantScheme())


def test_calibrated_model_quantizes_activations_to_the_int8_grid():
    import torch

    from edgedistill.quant.prepare import calibrate, prepare
    from edgedistill.quant.scheme import QuantScheme
    from edgedistill.students import build_student, parse_student

    model = build_student(parse_student(STUDENT), (1, 32, 32), 10).eval()
    prepared = prepare(model, QuantScheme())
    x = torch.randn(16, 1, 32, 32)
    calibrate(prepared, [x])
    scale, zero_point = prepared.model.classifier.out.params()
    with torch.no_grad():
        logits = prepared(x)
    levels = logits / scale + zero_point
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    assert levels.min() >= -128 and levels.max() <= 127


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A tiny student distilled for one epoch from the tiny recipe's teacher."""
    from edgedistill.distill.plan import DistillOptions, plan_distill
    from edgedistill.distill.run import run_distill

    out = tmp_path_factory.mktemp("qat") / "fp32"
    options = DistillOptions(task=str(TINY_RECIPE), student=STUDENT, epochs=1, out=out)
    plan = plan_distill(options)
    model, result = run_distill(plan)
    return plan, model, result


def test_qat_fine_tunes_the_quantized_student_and_writes_a_checkpoint(distilled, tmp_path):
    import torch

    from edgedistill.distill.qat import QatRequest, run_qat
    from edgedistill.quant.checkpoint import load_quantized
    from edgedistill.quant.scheme import QuantScheme
    from edgedistill.students.checkpoint import read_checkpoint
    from edgedistill.tasks.evaluate import accuracy

    plan, model, result = distilled
    request = QatRequest(QuantScheme())
    quantized, quant = run_qat(plan, model, request, tmp_path, result.accuracy)
    assert quant.calibration_samples == 256
    assert quant.accuracy_fp32 == result.accuracy
    assert quant.epochs_run >= 1 and quant.accuracy_qat is not None
    # what ships is whichever of PTQ and QAT did better on the val split
    if quant.method == "qat":
        assert quant.val_accuracy_qat >= quant.val_accuracy_ptq
        assert quant.accuracy == quant.accuracy_qat
    else:
        assert quant.val_accuracy_qat < quant.val_accuracy_ptq
        assert quant.accuracy == quant.accuracy_ptq
    assert accuracy(quantized, plan.task.data.test) == pytest.approx(quant.accuracy)

    meta = json.loads((tmp_path / "student.json").read_text())
    assert meta["precision"] == "int8" and meta["quant"]["symmetric_activations"] is False
    reloaded = load_quantized(read_checkpoint(tmp_path, "x"), (1, 32, 32), 10, "x")
    x = torch.stack([plan.task.data.test[i][0] for i in range(16)])
    with torch.no_grad():
        assert torch.equal(reloaded(x), quantized(x))

    # a second call finds the finished quantization and loads it instead of training again
    again, stored = run_qat(plan, model, request, tmp_path, result.accuracy)
    assert stored == quant
    with torch.no_grad():
        assert torch.equal(again(x), quantized(x))


def test_qat_off_and_too_little_data_calibrate_only(distilled, tmp_path):
    from edgedistill.distill.qat import QatRequest, run_qat
    from edgedistill.quant.scheme import QuantScheme

    plan, model, result = distilled
    _, off = run_qat(plan, model, QatRequest(QuantScheme(), False), tmp_path / "a", 0.5)
    assert off.method == "ptq" and "--qat off" in off.reason and off.accuracy_qat is None
    qat = plan.recipe.distill.qat.model_copy(update={"min_train_samples": 100_000})
    small = plan.recipe.model_copy(
        update={"distill": plan.recipe.distill.model_copy(update={"qat": qat})}
    )
    plan.task.recipe, saved = small, plan.task.recipe
    try:
        _, few = run_qat(plan, model, QatRequest(QuantScheme()), tmp_path / "b", 0.5)
    finally:
        plan.task.recipe = saved
    assert few.method == "ptq" and "min_train_samples" in few.reason


def test_fit_plans_int8_with_the_scheme_every_runtime_of_the_chain_takes(host_calibration):
    from edgedistill.fit.plan import FitOptions, plan_fit

    host = plan_fit(FitOptions(device="host-cpu", budget="1ms", precision="int8",
                               task=str(TINY_RECIPE), out=Path("/nonexistent/a")))  # fmt: skip
    assert host.precision == "int8" and host.quant_scheme is not None
    assert host.quant_scheme.symmetric_activations is False
    jetson = plan_fit(FitOptions(device="jetson-agx-orin", budget="1ms",
                                 task=str(TINY_RECIPE), out=Path("/nonexistent/b")))  # fmt: skip
    assert jetson.precision == "int8"  # the profile's deploy precision
    assert jetson.quant_scheme is not None and jetson.quant_scheme.symmetric_activations


def test_fit_refuses_int8_for_a_device_without_an_int8_rate(tmp_path):
    import yaml

    from edgedistill.profiles import profile_path

    document = yaml.safe_load(Path(profile_path("host-cpu")).read_text())
    del document["compute"]["peak_ops_per_s"]["int8"]
    document["name"] = "float-only"
    profile = tmp_path / "float-only.yaml"
    profile.write_text(yaml.safe_dump(document))
    result = invoke("fit", "--device", str(profile), "--budget", "1ms", "--precision", "int8",
                    "--task", str(TINY_RECIPE), "--out", str(tmp_path / "run"))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--precision int8" in result.stderr and "peak_ops_per_s" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_fit_refuses_a_qat_value_other_than_on_or_off(tmp_path):
    result = invoke("fit", "--device", "host-cpu", "--budget", "1ms", "--qat", "maybe",
                    "--out", str(tmp_path / "run"))  # fmt: skip
    assert result.returncode == 2
    assert "--qat maybe: choose on or off" in result.stderr
