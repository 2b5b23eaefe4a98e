"""User teachers: FILE.py:FN / module:FN with weights, and ONNX files run with onnxruntime."""

from __future__ import annotations

import pickle

import pytest
import torch

from edgedistill.distill.teacher_training import load_teacher
from edgedistill.errors import UserInputError
from edgedistill.fit.plan import FitOptions, plan_fit
from edgedistill.tasks.task import load_task
from edgedistill.teachers import prepare_teacher
from tests.byo_support import image_folder, tiny_teacher_file


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    """An image folder (3 classes, 3x8x8), the tiny teacher file, and weights for it."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("byo")
    data = image_folder(root / "images", classes=3, per_class=10, size=(8, 8))
    teacher_file = tiny_teacher_file(root)
    namespace: dict = {}
    exec(teacher_file.read_text(), namespace)
    torch.manual_seed(0)
    model = namespace["build"](num_classes=3, in_channels=3).eval()
    save_file(model.state_dict(), root / "teacher.safetensors")
    torch.save(model.state_dict(), root / "teacher.pt")
    return {
        "root": root,
        "data": f"imagefolder:{data}",
        "teacher": f"{teacher_file}:build",
        "file": teacher_file,
        "model": model,
    }


def export_onnx(model, path, input_shape, dynamic: bool = True):
    example = torch.zeros((1, *input_shape))
    kwargs = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic else {}
    torch.onnx.export(
        model, (example,), path, dynamo=True, external_data=False, verbose=False, **kwargs
    )
    return path


@pytest.fixture(scope="module")
def onnx_teachers(byo):
    return {
        "dynamic": export_onnx(byo["model"], byo["root"] / "dynamic.onnx", (3, 8, 8)),
        "batch1": export_onnx(byo["model"], byo["root"] / "batch1.onnx", (3, 8, 8), False),
        "wrong_input": export_onnx(byo["model"], byo["root"] / "wrong.onnx", (3, 16, 16)),
    }


def task_teacher(**kwargs):
    """The task's teacher, checked on the data (what fit and distill plan before training)."""
    task = load_task(**kwargs)
    return prepare_teacher(task.recipe, task.data, task.teacher_names)


def loaded(task):
    """The task's teacher, loaded as a distillation run loads it."""
    return load_teacher(prepare_teacher(task.recipe, task.data, task.teacher_names))


def refused(*fragments, **kwargs) -> str:
    with pytest.raises(UserInputError) as caught:
        task_teacher(**kwargs)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_python_teacher_with_safetensors_weights_gives_the_modules_logits(byo):
    task = load_task(
        data=byo["data"],
        teacher=byo["teacher"],
        teacher_weights=str(byo["root"] / "teacher.safetensors"),
    )
    teacher = loaded(task)
    assert teacher.form == "python" and not teacher.trained_now and not teacher.logits_only
    x = task.data.test.x
    with torch.no_grad():
        assert torch.equal(teacher.model(x), byo["model"](x))
    expected = float((byo["model"](x).argmax(1) == task.data.test.y).float().mean())
    assert teacher.test_accuracy == pytest.approx(expected)
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert teacher.cache_path.endswith("teacher.safetensors")


def test_state_dict_saved_with_torch_save_loads_through_weights_only(byo):
    task = load_task(
        data=byo["data"], teacher=byo["teacher"], teacher_weights=str(byo["root"] / "teacher.pt")
    )
    x = task.data.val.x
    with torch.no_grad():
        assert torch.equal(loaded(task).model(x), byo["model"](x))


class _RunsCode:
    """Unpickling this would create a marker file: a checkpoint that runs code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_checkpoint_is_refused_and_never_runs(byo, tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"weight": _RunsCode(marker)}))
    refused(
        "--teacher-weights",
        str(evil),
        "refused",
        "could run code",
        data=byo["data"],
        teacher=byo["teacher"],
        teacher_weights=str(evil),
    )
    whole_module = tmp_path / "module.pt"
    torch.save(byo["model"], whole_module)  # the whole nn.Module pickled, not a state dict
    refused(
        "refused",
        str(whole_module),
        data=byo["data"],
        teacher=byo["teacher"],
        teacher_weights=str(whole_module),
    )
    assert not marker.exists()


def test_weights_that_do_not_match_the_module_list_the_keys(byo, tmp_path):
    from safetensors.torch import save_file

    state = dict(byo["model"].state_dict())
    state.pop("0.weight")
    state["extra.weight"] = torch.zeros(2)
    state["4.bias"] = torch.zeros(5)
    path = tmp_path / "mismatch.safetensors"
    save_file(state, path)
    refused(
        str(path),
        "missing: 0.weight",
        "unexpected: extra.weight",
        "wrong shape: 4.bias (file (5,), module (3,))",
        data=byo["data"],
        teacher=byo["teacher"],
        teacher_weights=str(path),
    )


def test_teacher_output_width_must_equal_the_number_of_classes(byo):
    refused(
        "--teacher",
        "gives 7 outputs per sample",
        "3 classes",
        data=byo["data"],
        teacher=f"{byo['file']}:wrong_width",
    )


def test_teacher_function_must_exist_and_return_a_module(byo):
    refused("returned a str", data=byo["data"], teacher=f"{byo['file']}:not_a_module")
    refused("has no function 'nope'", "build", data=byo["data"], teacher=f"{byo['file']}:nope")
    refused("no such file", data=byo["data"], teacher=f"{byo['root'] / 'absent.py'}:build")
    refused("cannot import module", data=byo["data"], teacher="no_such_package.models:build")


def test_teacher_weights_need_a_teacher(byo):
    refused("--teacher-weights", "needs --teacher", data=byo["data"], teacher_weights="w.pt")


def test_module_form_imports_from_the_working_directory(byo, monkeypatch):
    monkeypatch.chdir(byo["root"])
    assert task_teacher(data=byo["data"], teacher="tiny_teacher:build").form == "python"


@pytest.mark.parametrize("kind", ["dynamic", "batch1"])
def test_onnx_teacher_gives_the_same_logits_as_the_module(byo, onnx_teachers, kind):
    from edgedistill.latency.costs import model_cost

    task = load_task(data=byo["data"], teacher=str(onnx_teachers[kind]))
    teacher = loaded(task)
    assert teacher.form == "onnx" and teacher.logits_only
    prepared = prepare_teacher(task.recipe, task.data, task.teacher_names)
    assert any("logits only" in note for note in prepared.notes)
    x = task.data.train.x
    with torch.no_grad():
        assert torch.allclose(teacher.model(x), byo["model"](x), atol=1e-5)
    cost = model_cost(byo["model"], (3, 8, 8))
    assert teacher.params == cost.params
    assert teacher.macs == pytest.approx(cost.macs, rel=0.05)
    assert teacher.onnx_path == str(onnx_teachers[kind])


def test_two_onnx_teachers_have_different_state_dicts(byo, onnx_teachers):
    first = loaded(load_task(data=byo["data"], teacher=str(onnx_teachers["dynamic"])))
    second = loaded(load_task(data=byo["data"], teacher=str(onnx_teachers["batch1"])))
    assert not torch.equal(
        first.model.state_dict()["onnx_sha256"], second.model.state_dict()["onnx_sha256"]
    )


def test_onnx_teacher_whose_input_does_not_match_the_data(byo, onnx_teachers):
    refused(
        str(onnx_teachers["wrong_input"]),
        "3x16x16",
        "3x8x8",
        data=byo["data"],
        teacher=str(onnx_teachers["wrong_input"]),
    )


def test_onnx_teacher_refuses_weights_and_broken_files(byo, onnx_teachers, tmp_path):
    refused(
        "--teacher-weights",
        "carries its weights",
        data=byo["data"],
        teacher=str(onnx_teachers["dynamic"]),
        teacher_weights=str(byo["root"] / "teacher.pt"),
    )
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    refused(str(broken), "not a readable ONNX model", data=byo["data"], teacher=str(broken))


def test_builtin_teacher_trains_on_labeled_samples_only():
    from edgedistill.distill.labels import labeled_part
    from edgedistill.tasks.data import Split

    split = Split(torch.zeros(5, 1, 4, 4), torch.tensor([0, -1, 1, -1, 1]))
    part = labeled_part(split)
    assert part.y.tolist() == [0, 1, 1]


def test_task_teacher_callers_get_the_users_teacher(byo):
    task = load_task(
        data=byo["data"],
        teacher=byo["teacher"],
        teacher_weights=str(byo["root"] / "teacher.safetensors"),
    )
    teacher = load_teacher(prepare_teacher(task.recipe, task.data))
    assert teacher.form == "python" and not teacher.trained_now


def test_onnx_teacher_refuses_feature_losses_before_training(byo, onnx_teachers, tmp_path):
    recipe = tmp_path / "features.yaml"
    recipe.write_text(
        "name: features\n"
        f"data: {{source: '{byo['data']}'}}\n"
        "distill:\n"
        "  losses: [kd, {name: fitnet, pairs: ['features.0=features.0']}]\n"
        "  train: {epochs: 1, lr: 0.01}\n"
    )
    options = FitOptions(
        device="host-cpu", budget="1ms", task=str(recipe), teacher=str(onnx_teachers["dynamic"])
    )
    with pytest.raises(UserInputError) as caught:
        plan_fit(options)
    for fragment in ("--teacher", "logits only", "fitnet", "unavailable"):
        assert fragment in str(caught.value)
