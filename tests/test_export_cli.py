"""`edgedistill export`: the formats table, a checkpoint and a user's module exported and
validated, export.json agreeing with the files, and bad input refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgedistill.export import EXPORTERS
from tests.conftest import TINY_RECIPE, invoke, run_cli

SPEC = "mbv2:d=1,r=16,w=0.25"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint folder as `fit` writes it (weights untrained: export does not care)."""
    from safetensors.torch import save_file

    from edgedistill.students import build_student, parse_student

    folder = tmp_path_factory.mktemp("run") / "checkpoint"
    folder.mkdir()
    torch.manual_seed(0)
    student = build_student(parse_student(SPEC), (1, 32, 32), 10)
    save_file(
        {k: v.contiguous() for k, v in student.state_dict().items()}, folder / "student.safetensors"
    )
    meta = {"spec": SPEC, "task": "tiny-digits", "input_shape": [1, 32, 32], "num_classes": 10}
    (folder / "student.json").write_text(json.dumps(meta))
    return folder


def test_list_prints_a_row_per_registered_exporter():
    result = invoke("export", "--list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["format"] for row in rows] == EXPORTERS.names()
    by_name = {row["format"]: row for row in rows}
    assert by_name["tensorrt"]["built_from"] == "onnx"
    assert by_name["tflite"]["requires"] == "pip install 'edgedistill[tflite]'"
    text = invoke("export", "--list")
    assert "pip install 'edgedistill[coreml]'" in text.stdout and "edgetpu_compiler" in text.stdout


def test_export_of_a_checkpoint_validates_every_artifact_and_writes_export_json(checkpoint):
    out = checkpoint.parent / "exported"
    result = run_cli(
        "export", str(checkpoint.parent), "--formats", "tflite,coreml", "--precision", "fp16",
        "--task", str(TINY_RECIPE), "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == json.loads((out / "export.json").read_text())
    formats = [(a["format"], a["precision"], a["validation"]) for a in document["artifacts"]]
    assert formats == [
        ("onnx", "fp32", "outputs"),
        ("tflite", "fp16", "outputs"),
        ("coreml", "fp16", "structural"),
    ]
    from edgedistill.hashing import sha256_file

    for artifact in document["artifacts"]:
        assert artifact["sha256"] == sha256_file(out / artifact["path"])
    tflite = document["artifacts"][1]
    assert tflite["accuracy"] is not None and tflite["argmax_agreement"] >= 0.98
    assert abs(tflite["accuracy"] - document["student_accuracy"]) <= 0.01
    assert document["validation_sample"] == "the first 64 samples of the val split"
    assert sorted(p.name for p in out.iterdir()) == [
        "export.json", "model.fp16.mlpackage.zip", "model.fp16.tflite", "model.fp32.onnx",
    ]  # fmt: skip


def test_export_of_a_users_module_compares_on_random_inputs_without_task_data(tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "tiny.py").write_text(
        "from torch import nn\n\n\ndef build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(5))\n"
    )
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 5)
    )
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "w.safetensors"
    )
    out = tmp_path / "out"
    result = invoke(  # the checkpoint export above is the real process
        "export", f"{tmp_path / 'tiny.py'}:build", "--weights", str(tmp_path / "w.safetensors"),
        "--input-shape", "3,8,8", "--formats", "tflite", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    tflite = document["artifacts"][-1]
    assert tflite["format"] == "tflite" and tflite["accuracy"] is None
    assert tflite["max_abs_diff"] <= tflite["tolerance"]["max_abs_diff"]
    assert document["validation_sample"] == "64 seeded random inputs"
    assert any("--task" in note for note in document["notes"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--formats", "tflite"], "--out: missing"),
        (["--formats", "tflite", "--precision", "int8", "--out", "{out}"], "--precision int8"),
    ],
)
def test_bad_export_input_is_refused_with_exit_2_and_no_traceback(
    checkpoint, tmp_path, args, expected
):
    filled = [a.format(out=tmp_path / "new") for a in args]
    result = invoke("export", str(checkpoint), *filled)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("formats", "out", "expected"),
    [
        (["tensorrtt"], "new", "did you mean tensorrt"),
        (None, "new", "--formats: name the formats"),
        (["tflite"], "full", "not empty"),
    ],
)
def test_export_plan_refuses_bad_input_before_writing(checkpoint, tmp_path, formats, out, expected):
    from edgedistill.errors import UserInputError
    from edgedistill.export.run import ExportRequest, plan_export

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    request = ExportRequest(checkpoint=str(checkpoint), out=tmp_path / out, formats=formats)
    with pytest.raises(UserInputError, match=expected):
        plan_export(request)
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
