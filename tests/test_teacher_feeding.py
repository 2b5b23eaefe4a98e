"""A user's teacher is fed as it was trained: declared (--teacher-preprocess) or detected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.byo_support import TINY_TEACHER
from tests.conftest import invoke

TEACHER = (
    TINY_TEACHER
    + """

class _ChannelsLast(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.inner = build(num_classes, in_channels)

    def forward(self, x):  # x: N x H x W x C
        assert x.shape[-1] in (1, 3), x.shape
        return self.inner(x.permute(0, 3, 1, 2))


def build_nhwc(num_classes, in_channels):
    return _ChannelsLast(num_classes, in_channels)
"""
)
LEVELS = (50, 120, 190)  # the classes differ in brightness only: the pixel convention matters


def brightness_folder(root: Path, per_class: int = 40, size: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for level in LEVELS:
        folder = root / f"level_{level}"
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = np.clip(level + rng.normal(0, 18, (size, size, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index:03d}.png")
    return root


def train(model, dataset, epochs: int = 60) -> None:
    from edgedistill.tasks.data import all_labels

    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    x, y = dataset.x, all_labels(dataset)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def unit_teacher(tmp_path_factory):
    """A teacher trained by its owner on pixels scaled to [0, 1] (ToTensor(), no mean/std)."""
    from safetensors.torch import save_file

    from edgedistill.tasks.conventions import preset_preprocessing
    from edgedistill.tasks.evaluate import accuracy
    from edgedistill.tasks.task import load_task

    root = tmp_path_factory.mktemp("feeding")
    data = f"imagefolder:{brightness_folder(root / 'levels')}"
    (root / "teacher.py").write_text(TEACHER)
    namespace: dict = {}
    exec(TEACHER, namespace)  # the same module the CLI will import
    task = load_task(data=data)
    unit = task.with_preprocessing(
        preset_preprocessing("unit", task.recipe.preprocessing, task.data.facts)
    )
    model = namespace["build"](3, 3)
    train(model, unit.data.train)
    save_file(model.state_dict(), root / "teacher.safetensors")
    return {
        "root": root,
        "data": data,
        "source": f"{root / 'teacher.py'}:build",
        "weights": str(root / "teacher.safetensors"),
        "model": model,
        "own_accuracy": accuracy(model, unit.data.test),
        "data_accuracy": accuracy(model, task.data.test),
    }


def fed(teacher, preprocess: str | None = None, source: str | None = None):
    from edgedistill.tasks.task import load_task
    from edgedistill.teachers import feed_teacher

    task = load_task(
        data=teacher["data"],
        teacher=source or teacher["source"],
        teacher_weights=teacher["weights"],
        teacher_preprocess=preprocess,
    )
    return feed_teacher(task)


def test_the_teacher_fed_the_datas_mean_and_std_loses_what_it_learned(unit_teacher):
    """The failure the detection exists for (the crippled-teacher case of the issue)."""
    assert unit_teacher["own_accuracy"] >= 0.95
    assert unit_teacher["data_accuracy"] <= unit_teacher["own_accuracy"] - 0.25


def test_undeclared_teacher_is_detected_as_unit_and_keeps_its_accuracy(unit_teacher):
    from edgedistill.tasks.evaluate import accuracy

    result = fed(unit_teacher)
    assert result.feeding.how == "detected"
    assert result.feeding.preset == "unit"
    figures = result.feeding.accuracy_by_preset
    assert set(figures) == {"unit", "imagenet", "signed", "raw", "data"}
    assert figures["unit"] == max(figures.values())
    assert figures["data"] < figures["unit"] - 0.2
    assert result.feeding.samples == len(result.task.data.val)
    assert any("detected: unit" in note and "data " in note for note in result.notes)
    preprocessing = result.task.recipe.preprocessing
    assert preprocessing.scale == pytest.approx(1 / 255)
    assert preprocessing.mean == [0.0] * 3 and preprocessing.std == [1.0] * 3
    model = result.teacher.architecture()
    assert accuracy(model, result.task.data.test) == pytest.approx(unit_teacher["own_accuracy"])


def test_declared_unit_skips_detection_and_feeds_the_same(unit_teacher):
    from edgedistill.tasks.evaluate import accuracy

    result = fed(unit_teacher, "unit")
    assert result.feeding.how == "declared" and result.feeding.preset == "unit"
    assert result.feeding.accuracy_by_preset == {}
    model = result.teacher.architecture()
    assert accuracy(model, result.task.data.test) == pytest.approx(unit_teacher["own_accuracy"])


def test_declared_imagenet_feeds_torchvisions_mean_and_std(unit_teacher):
    from PIL import Image

    result = fed(unit_teacher, "imagenet")
    task = result.task
    assert result.feeding.preset == "imagenet"
    assert task.recipe.preprocessing.mean == pytest.approx([0.485, 0.456, 0.406])
    row = int(task.parts["test"][0])
    path = sorted((unit_teacher["root"] / "levels").rglob("*.png"))[row]
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((pixels - mean) / std).transpose(2, 0, 1)
    assert task.data.test.x[0].numpy() == pytest.approx(expected, abs=1e-5)


def test_declared_fields_override_the_preset_and_resize_the_input(unit_teacher):
    result = fed(unit_teacher, "signed,resize=16x16,interpolation=nearest")
    preprocessing = result.task.recipe.preprocessing
    assert preprocessing.mean == [0.5] * 3 and preprocessing.std == [0.5] * 3
    assert list(preprocessing.resize) == [16, 16]
    assert preprocessing.interpolation == "nearest"
    assert result.task.data.input_shape == (3, 16, 16)
    assert result.task.recipe.input.height == 16


def test_channels_last_teacher_is_fed_nhwc(unit_teacher):
    from edgedistill.tasks.evaluate import accuracy

    source = unit_teacher["source"].replace(":build", ":build_nhwc")
    weights = {f"inner.{k}": v for k, v in unit_teacher["model"].state_dict().items()}
    from safetensors.torch import save_file

    path = unit_teacher["root"] / "teacher-nhwc.safetensors"
    save_file(weights, path)
    result = fed({**unit_teacher, "weights": str(path)}, "unit,layout=nhwc", source)
    assert result.feeding.layout == "nhwc"
    model = result.teacher.architecture()
    assert accuracy(model, result.task.data.test) == pytest.approx(unit_teacher["own_accuracy"])


def test_builtin_teacher_keeps_the_preprocessing_it_is_trained_with():
    from edgedistill.tasks.task import load_task
    from edgedistill.teachers import feed_teacher

    task = load_task("digits")
    result = feed_teacher(task)
    assert result.feeding.how == "trained-here"
    assert result.task.recipe.preprocessing == task.recipe.preprocessing


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("imagenett", "imagenet"),
        ("unit,mean=0.5/0.5", "2 values"),
        ("unit,std=0/1/1", "std"),
        ("unit,colour=rgb", "colour"),
        ("unit,resize=big", "resize"),
        ("unit,scale=1/0", "scale"),
        ("unit,signed", "FIELD=VALUE"),
    ],
)
def test_bad_teacher_preprocess_is_refused_naming_the_flag(unit_teacher, tmp_path, value, named):
    result = invoke(
        "fit",
        "--device",
        "host-cpu",
        "--budget",
        "1ms",
        "--teacher",
        unit_teacher["source"],
        "--teacher-weights",
        unit_teacher["weights"],
        "--data",
        unit_teacher["data"],
        "--teacher-preprocess",
        value,
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 2, result.stderr
    assert "--teacher-preprocess" in result.stderr and named in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_recipe_teacher_preprocess_block_is_read(unit_teacher, tmp_path):
    from edgedistill.tasks.task import load_task
    from edgedistill.teachers import feed_teacher

    recipe = tmp_path / "levels.yaml"
    recipe.write_text(
        f"name: levels\ndata: {{source: '{unit_teacher['data']}'}}\n"
        f"teacher:\n  source: '{unit_teacher['source']}'\n"
        f"  weights: '{unit_teacher['weights']}'\n"
        "  preprocess: {preset: unit, channel_order: rgb}\n"
    )
    result = feed_teacher(load_task(str(recipe)))
    assert result.feeding.how == "declared" and result.feeding.preset == "unit"
    assert result.task.recipe.preprocessing.std == [1.0] * 3
