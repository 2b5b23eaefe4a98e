"""`fit` on a user's teacher and data, run as the README's worked example does (tiny sizes)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.byo_support import image_folder
from tests.conftest import budget_with_room, invoke, run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "byo"
# A small student (the tests are about the teacher's forms): the budget leaves the fastest
# 3x16x16 candidates room on this host's calibration (see _calibrate_for_16px).
BUDGET_MS = 0.05
RUN_FILES = {
    "summary.json",
    "search.json",
    "bundle/model.fp32.onnx",
    "bundle/preprocessing.json",
    "bundle/labels.txt",
    "bundle/README.md",
    "bundle/manifest.json",
    "checkpoint/student.safetensors",
    "checkpoint/student.json",
}


def run_example(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def example(tmp_path_factory, host_calibration):
    """The README's steps: generate the image folder, train the example teacher."""
    root = tmp_path_factory.mktemp("byo-example")
    shapes = root / "shapes"
    run_example(
        str(EXAMPLES / "make_shapes.py"),
        str(shapes),
        "--per-class",
        "30",
        "--size",
        "16",
        "--unlabeled",
        "8",
    )
    run_example(
        str(EXAMPLES / "train_teacher.py"),
        str(shapes),
        "--out",
        str(root / "teacher"),
        "--epochs",
        "5",
    )
    budget = _calibrate_for_16px()
    return {"root": root, "shapes": shapes, "teacher": root / "teacher", "budget": budget}


def _calibrate_for_16px() -> str:
    """Calibrate host-cpu for 3x16x16 students once, in process, on 12 candidates (as the
    session's own calibration does), so the byo fits below do not calibrate on 24; stored in
    a file of its own beside the session's 1x32x32 one."""
    from edgedistill.fit.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space

    shape = (3, 16, 16)
    model = calibrate_on_host(
        load_profile("host-cpu"), enumerate_space(shape), shape, 4, samples=12
    )
    return f"{budget_with_room(model, BUDGET_MS, shape, 4):g}ms"


def fit(out: Path, *args: str, runner=invoke, env: dict | None = None, budget: str = "2ms"):
    """In this process by default; `runner=run_cli` for a real one. The runs that train pass
    the example's small budget; refusals never get that far."""
    result = runner(
        "fit",
        "--device",
        "host-cpu",
        "--budget",
        budget,
        "--epochs",
        "2",
        "--out",
        str(out),
        "--json",
        *args,
        env=env,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def python_run(example):
    out = example["root"] / "run-python"
    result = fit(
        out,
        "--teacher",
        f"{EXAMPLES / 'teacher.py'}:build",
        "--teacher-weights",
        str(example["teacher"] / "teacher.safetensors"),
        "--data",
        f"imagefolder:{example['shapes']}",
        runner=run_cli,  # a real process, as a user runs it
        budget=example["budget"],
    )
    return result, out


@pytest.fixture(scope="module")
def onnx_run(example):
    out = example["root"] / "run-onnx"
    result = fit(
        out,
        "--teacher",
        str(example["teacher"] / "teacher.onnx"),
        "--data",
        f"imagefolder:{example['shapes']}",
        budget=example["budget"],
    )
    return result, out


def files_of(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_python_teacher_fit_writes_the_same_outputs_as_the_digits_task(python_run):
    from edgedistill.bundle import verify_bundle

    result, out = python_run
    summary = json.loads((out / "summary.json").read_text())
    assert result.returncode == (0 if summary["fits_budget"] else 1), result.stderr
    assert json.loads(result.stdout) == summary
    assert files_of(out) >= RUN_FILES
    assert verify_bundle(out).ok
    assert summary["teacher"]["form"] == "python"
    assert summary["teacher"]["trained_now"] is False
    assert summary["task"]["labels"] == ["circle", "cross", "square", "triangle"]
    assert summary["task"]["input_shape"] == [1, 3, 16, 16]
    assert summary["task"]["split"]["method"].startswith("stratified")
    assert summary["task"]["split"]["unlabeled_in_train"] == 8
    assert (out / "bundle" / "labels.txt").read_text().split() == summary["task"]["labels"]


def test_bundle_preprocessing_is_the_teachers_as_detected(python_run):
    """The example teacher is trained on [0, 1] pixels: detected, and shipped the same way."""
    _, out = python_run
    summary = json.loads((out / "summary.json").read_text())
    preprocessing = json.loads((out / "bundle" / "preprocessing.json").read_text())
    assert summary["teacher"]["feeding"]["how"] == "detected"
    assert summary["teacher"]["feeding"]["preset"] == "unit"
    assert preprocessing == summary["task"]["preprocessing"]
    assert preprocessing["resize"] == [16, 16]
    assert preprocessing["scale"] == pytest.approx(1 / 255)
    assert preprocessing["mean"] == [0.0] * 3 and preprocessing["std"] == [1.0] * 3
    assert preprocessing["channel_order"] == "rgb"
    card = (out / "bundle" / "README.md").read_text()
    assert "The teacher's preprocessing (`unit`), as detected" in card


def test_teacher_accuracy_is_measured_on_the_users_test_split(example, python_run):
    from safetensors.torch import load_file

    from edgedistill.tasks.conventions import preset_preprocessing
    from edgedistill.tasks.data import all_labels, iter_batches
    from edgedistill.tasks.task import load_task

    _, out = python_run
    summary = json.loads((out / "summary.json").read_text())
    task = load_task(data=f"imagefolder:{example['shapes']}")
    task = task.with_preprocessing(
        preset_preprocessing("unit", task.recipe.preprocessing, task.data.facts)
    )  # as the example teacher was trained, and as the run detected
    sys.path.insert(0, str(EXAMPLES))
    try:
        from teacher import build
    finally:
        sys.path.remove(str(EXAMPLES))
    model = build(num_classes=4, in_channels=3)
    model.load_state_dict(load_file(example["teacher"] / "teacher.safetensors"))
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x).argmax(1) for x, _ in iter_batches(task.data.test)])
    expected = float((predicted == all_labels(task.data.test)).float().mean())
    assert summary["teacher"]["accuracy"] == pytest.approx(expected)
    assert summary["teacher"]["accuracy"] > 0.5  # the example teacher learned the shapes


def test_onnx_teacher_fit_works_the_same_way_with_logits_only(onnx_run, python_run):
    result, out = onnx_run
    summary = json.loads((out / "summary.json").read_text())
    reference = json.loads((python_run[1] / "summary.json").read_text())
    assert result.returncode == (0 if summary["fits_budget"] else 1), result.stderr
    assert files_of(out) >= RUN_FILES
    assert summary["teacher"]["form"] == "onnx"
    # the same network and weights, run by onnxruntime instead of PyTorch
    assert summary["teacher"]["accuracy"] == pytest.approx(reference["teacher"]["accuracy"])
    # counted from the ONNX graph, where the exporter folded batch norms into the convolutions
    assert summary["teacher"]["params"] == pytest.approx(reference["teacher"]["params"], rel=0.01)
    assert summary["teacher"]["latency_ms"]["p90"] is not None
    assert any("logits only" in note and "unavailable" in note for note in summary["notes"])


def test_pickled_checkpoint_is_refused_at_the_command_line(example, tmp_path):
    evil = tmp_path / "checkpoint.pt"
    evil.write_bytes(pickle.dumps({"note": object()}))
    result = fit(
        tmp_path / "run",
        "--teacher",
        f"{EXAMPLES / 'teacher.py'}:build",
        "--teacher-weights",
        str(evil),
        "--data",
        f"imagefolder:{example['shapes']}",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(evil) in result.stderr.replace("\n", "") and "refused" in result.stderr
    assert list(tmp_path.iterdir()) == [evil]  # nothing half-written next to --out


def test_onnx_teacher_for_other_images_is_refused_naming_the_file(example, tmp_path):
    small = image_folder(tmp_path / "small", classes=4, per_class=6, size=(12, 12))
    onnx = example["teacher"] / "teacher.onnx"
    result = fit(tmp_path / "run", "--teacher", str(onnx), "--data", f"imagefolder:{small}")
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "teacher.onnx" in message and "3x12x12" in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_folder_with_one_class_is_refused_at_the_command_line(tmp_path):
    lonely = image_folder(tmp_path / "lonely", classes=1, per_class=6)
    result = fit(tmp_path / "run", "--data", f"imagefolder:{lonely}")
    assert result.returncode == 2, result.stderr
    assert "lonely" in result.stderr and "at least two" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_example_recipe_names_teacher_data_and_preprocessing(example, tmp_path):
    import shutil

    from edgedistill.tasks.task import load_task
    from edgedistill.teachers import prepare_teacher

    shutil.copy(EXAMPLES / "shapes.yaml", tmp_path / "shapes.yaml")
    shutil.copy(EXAMPLES / "teacher.py", tmp_path / "teacher.py")
    shutil.copytree(example["shapes"], tmp_path / "shapes")
    shutil.copytree(example["teacher"], tmp_path / "shapes-teacher")
    task = load_task(str(tmp_path / "shapes.yaml"))
    assert task.recipe.input.shape == (3, 32, 32) == task.data.input_shape  # resized from 16
    assert task.recipe.preprocessing.mean == [0.5, 0.5, 0.5]
    assert task.recipe.labels == ["circle", "cross", "square", "triangle"]
    assert task.recipe.task_type == "classification" and task.recipe.metrics == ["accuracy"]
    teacher = prepare_teacher(task.recipe, task.data, task.teacher_names)
    assert teacher.form == "python"
    assert teacher.cache_path == str(tmp_path / "shapes-teacher" / "teacher.safetensors")
