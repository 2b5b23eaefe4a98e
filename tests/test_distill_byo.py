"""`distill` with your own teacher and data: a Python teacher with layers for feature losses,
an ONNX teacher for logit losses (feature losses refused), an image folder as the data."""

from __future__ import annotations

import json

import pytest

from tests.byo_support import image_folder, tiny_teacher_file
from tests.conftest import invoke

STUDENT = "mbv2:d=1,r=8,w=0.25"


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    import torch

    from edgedistill.export import EXPORTERS

    root = tmp_path_factory.mktemp("distill-byo")
    folder = image_folder(root / "images", classes=3, per_class=12)
    teacher_file = tiny_teacher_file(root)
    namespace: dict = {}
    exec(teacher_file.read_text(), namespace)  # the test's own file
    torch.manual_seed(0)
    module = namespace["build"](3, 3).eval()
    onnx = EXPORTERS.get("onnx").export(module, torch.zeros(1, 3, 8, 8), root / "t.onnx", "fp32")
    return {"data": f"imagefolder:{folder}", "python": f"{teacher_file}:build", "onnx": onnx.path}


def distill(byo, teacher: str, out, *args: str):
    command = ["distill", "--data", byo["data"], "--teacher", teacher, "--student", STUDENT]
    return invoke(*command, "--out", str(out), "--epochs", "1", *args, env={"COLUMNS": "400"})


def test_python_teacher_layers_feed_fitnet(byo, tmp_path):
    result = distill(byo, byo["python"], tmp_path / "r", "--loss", "kd,fitnet", "--layers",
                     "features.1=0", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["teacher_outputs"]["mode"] == "cached"
    assert document["teachers"][0]["name"] == "task" and document["train_samples"] > 0
    assert 0 <= document["teacher_accuracy"] <= 1


def test_onnx_teacher_distills_logits(byo, tmp_path):
    result = distill(byo, byo["onnx"], tmp_path / "r", "--loss", "dkd", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["teacher_outputs"]["mode"] == "cached"


def test_onnx_teacher_refuses_feature_losses_before_training(byo, tmp_path):
    result = distill(byo, byo["onnx"], tmp_path / "r", "--loss", "at", "--layers", "x=y")
    assert result.returncode == 2, result.stderr
    assert "logits only" in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()
