"""Regression tasks: float targets from data to bundle, scored by MAE, RMSE and R²."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import invoke, run_cli

TINY_POSE = Path(__file__).resolve().parent / "data" / "tiny_digits_pose.yaml"


def test_regression_figures_match_a_hand_computation():
    from edgedistill.tasks.kinds import kind_of

    predicted = torch.tensor([[1.0, 0.0], [2.0, 1.0], [4.0, 1.0]])
    truth = torch.tensor([[1.0, 0.5], [3.0, 0.5], [5.0, 2.0]])
    figures = kind_of(truth).metrics(predicted, truth)
    errors = (predicted - truth).numpy()
    assert figures["mae"] == pytest.approx(np.abs(errors).mean())
    assert figures["rmse"] == pytest.approx(np.sqrt((errors**2).mean()))
    # R² per output, then averaged (as scikit-learn's r2_score does)
    r2 = [
        1 - ((errors[:, k] ** 2).sum()) / ((truth[:, k] - truth[:, k].mean()) ** 2).sum().item()
        for k in range(2)
    ]
    assert figures["r2"] == pytest.approx(np.mean(r2))
    assert kind_of(truth).score(truth, truth) == pytest.approx(1.0)


def test_unlabeled_regression_rows_are_skipped_by_the_loss_on_targets():
    from edgedistill.tasks.kinds import kind_of

    outputs = torch.tensor([[1.0], [5.0]])
    targets = torch.tensor([[3.0], [float("nan")]])
    kind = kind_of(targets)
    assert kind.labeled(targets).tolist() == [True, False]
    assert float(kind.hard_loss(outputs, targets)) == pytest.approx(4.0)  # (1 - 3)^2
    # Huber with delta 1: 1 * (|d| - 0.5) beyond the delta
    assert float(kind.hard_loss(outputs, targets, huber_delta=1.0)) == pytest.approx(1.5)


def test_mse_distillation_mixes_teacher_outputs_and_targets_by_alpha():
    from edgedistill.distill.losses import LOSSES
    from edgedistill.distill.losses._registry import LossInputs

    family = LOSSES.get("mse")
    term = family.build(family.params_model(alpha=0.25, huber_delta=None))
    student = torch.tensor([[0.0], [2.0]])
    teacher = torch.tensor([[1.0], [1.0]])
    targets = torch.tensor([[2.0], [float("nan")]])
    inputs = LossInputs(student, targets, [teacher])
    # teacher term: mean((0-1)^2, (2-1)^2) = 1; target term: (0-2)^2 = 4 on the labeled row
    assert float(term(inputs)) == pytest.approx(0.25 * 1 + 0.75 * 4)


def _npz(path: Path, y: np.ndarray, **more) -> str:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(len(y), 8, 8), dtype=np.uint8)
    np.savez(path, x=x, y=y, **more)
    return f"npz:{path}"


def test_npz_with_float_targets_is_a_regression_task(tmp_path):
    from edgedistill.tasks.task import load_task

    y = np.random.default_rng(1).normal(size=(60, 3)).astype(np.float32)
    y[:5] = np.nan  # unlabeled: training data only
    data = _npz(tmp_path / "r.npz", y, labels=np.array(["a", "b", "c"]))
    task = load_task(data=data)
    assert task.recipe.task_type == "regression"
    assert task.recipe.metrics == ["mae", "rmse", "r2"]
    assert task.recipe.labels == ["a", "b", "c"]
    assert [spec.name for spec in task.recipe.distill.losses] == ["mse"]
    assert task.data.train.y.shape[1] == 3 and task.data.train.y.dtype == torch.float32
    assert task.data.split["method"].startswith("random")
    assert task.data.split["unlabeled_in_train"] == 5
    assert not torch.isnan(task.data.test.y).any()


def test_python_dataset_with_float_targets_is_a_regression_task(tmp_path):
    from edgedistill.tasks.task import load_task

    (tmp_path / "pose_data.py").write_text(
        "import torch\n"
        "def data():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x = torch.rand(40, 1, 8, 8, generator=g)\n"
        "    return torch.utils.data.TensorDataset(x, x.mean(dim=(1, 2, 3)).reshape(40, 1))\n"
    )
    task = load_task(data=f"{tmp_path / 'pose_data.py'}:data")
    assert task.recipe.task_type == "regression" and task.recipe.labels == ["y"]
    sample_x, sample_y = task.data.train[0]
    assert float(sample_y[0]) == pytest.approx(float(sample_x.mean()), abs=1e-6)


def test_classification_recipe_on_float_targets_is_refused_naming_the_field(tmp_path):
    data = _npz(tmp_path / "r.npz", np.linspace(0, 1, 40, dtype=np.float32))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ntask_type: classification\ndata: {{source: '{data}'}}\n")
    result = invoke("search", "--device", "host-cpu", "--budget", "1ms", "--task", str(recipe))
    assert result.returncode == 2, result.stderr
    assert "task_type" in result.stderr and "regression" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("loss", "named"), [("kd", "needs class logits"), ("dkd", "use at, ce, fitnet, mse")]
)
def test_classification_losses_are_refused_for_regression(tmp_path, loss, named):
    result = invoke(
        "distill",
        "--task",
        str(TINY_POSE),
        "--student",
        "mbv2:d=1,r=16,w=0.25",
        "--loss",
        loss,
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


def test_regression_metrics_are_refused_for_classification(tmp_path):
    recipe = tmp_path / "c.yaml"
    recipe.write_text("name: c\ndata: {source: 'builtin:digits'}\nmetrics: [r2]\n")
    result = invoke("search", "--device", "host-cpu", "--budget", "1ms", "--task", str(recipe))
    assert result.returncode == 2 and "metrics" in result.stderr and "r2" in result.stderr


def test_regression_export_is_judged_by_output_tolerance_not_argmax(tmp_path):
    from edgedistill.export.validate import (
        Reference,
        compare_predictions,
        judge,
        onnx_predictions,
        tolerance_for,
    )
    from edgedistill.students import build_student
    from edgedistill.students.candidate import Candidate
    from edgedistill.tasks.task import load_task

    task = load_task(str(TINY_POSE))
    student = build_student(Candidate.parse("mbv2:d=1,r=16,w=0.25"), (1, 32, 32), 2).eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(student, torch.zeros(1, 1, 32, 32), path, dynamo=False)
    reference = Reference.from_data(student, task.data.val, task.data.test)
    validation = compare_predictions(lambda x: onnx_predictions(path, x), reference, "ort")
    assert reference.regression and validation.argmax_agreement is None
    assert validation.accuracy == pytest.approx(reference.student_accuracy, abs=1e-4)
    int8 = tolerance_for("int8", reference)
    assert int8["max_abs_diff"] == pytest.approx(0.15 * reference.output_spread)
    assert "min_argmax_agreement" not in int8
    assert judge(validation, tolerance_for("fp32", reference), reference) == []
    far = validation.__class__("outputs", "ort", max_abs_diff=1.0, accuracy=validation.accuracy)
    assert judge(far, {"max_abs_diff": 0.01}, reference) == ["max abs output difference 1 > 0.01"]


@pytest.fixture(scope="module")
def pose_fit(tmp_path_factory, tiny_budget_ms):
    out = tmp_path_factory.mktemp("pose") / "run"
    result = run_cli(
        "fit",
        "--device",
        "host-cpu",
        "--budget",
        f"{tiny_budget_ms:g}ms",  # a small student, with room on slower hosts
        "--task",
        str(TINY_POSE),
        "--epochs",
        "2",
        "--out",
        str(out),
        "--json",
    )
    return result, out


def test_regression_fit_goes_from_data_to_a_validated_bundle(pose_fit):
    from edgedistill.bundle import verify_bundle

    result, out = pose_fit
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "summary.json").is_file(), result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    student, teacher = summary["student"], summary["teacher"]
    assert student["metric"] == teacher["metric"] == "r2"
    assert set(student["metrics"]) == set(teacher["metrics"]) == {"mae", "rmse", "r2"}
    assert teacher["metrics"]["r2"] == pytest.approx(teacher["accuracy"], abs=1e-6)
    assert teacher["metrics"]["r2"] > 0.3  # the tiny teacher learned the pose a little
    onnx = next(a for a in summary["artifacts"] if a["format"] == "onnx")
    assert onnx["argmax_agreement"] is None
    assert onnx["max_abs_diff"] <= onnx["tolerance"]["max_abs_diff"]
    assert summary["retention"] == pytest.approx(onnx["accuracy"] / teacher["accuracy"])
    assert (out / "bundle" / "labels.txt").read_text().split() == ["angle_rad", "scale"]
    assert verify_bundle(out).ok
