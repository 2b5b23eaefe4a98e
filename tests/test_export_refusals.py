"""Exports that cannot work are refused with a message naming the layer, flag or file; the
output directory is never half-written."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from edgedistill.errors import UserInputError
from edgedistill.export import ExportContext
from tests.conftest import invoke

USER_MODULE = '''
import torch
from torch import nn


class Gaussianize(nn.Module):
    """Uses erfinv, which neither litert-torch nor coremltools can convert."""

    def forward(self, x):
        return torch.special.erfinv(torch.tanh(x) * 0.99)


class Net(nn.Module):
    def __init__(self, squash=True):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.squash = Gaussianize() if squash else nn.ReLU()
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        return self.head(self.squash(self.conv(x)).mean(dim=(2, 3)))


def build():
    return Net()


def build_plain():
    return Net(squash=False)
'''


def _user_module(tmp_path: Path):
    from safetensors.torch import save_file

    path = tmp_path / "net.py"
    path.write_text(USER_MODULE)
    namespace: dict = {}
    exec(compile(USER_MODULE, str(path), "exec"), namespace)
    torch.manual_seed(0)
    model = namespace["build"]()
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "w.safetensors"
    )
    return path, model


@pytest.mark.parametrize("fmt", ["tflite", "coreml"])
def test_preflight_names_the_layer_the_converter_cannot_convert(tmp_path, fmt):
    from edgedistill.export.preflight import preflight

    _, model = _user_module(tmp_path)
    with pytest.raises(UserInputError) as error:
        preflight([fmt], "fp32", model, torch.zeros(1, 1, 8, 8), ExportContext())
    message = str(error.value)
    assert message.startswith(f"{fmt}: layer `squash` (Gaussianize) uses the op")
    assert "erf" in message and f"drop {fmt} from --formats" in message


def test_export_cli_refuses_an_unconvertible_layer_and_writes_nothing(tmp_path):
    path, _ = _user_module(tmp_path)
    out = tmp_path / "out"
    result = invoke(
        "export", f"{path}:build", "--weights", str(tmp_path / "w.safetensors"),
        "--input-shape", "1,8,8", "--formats", "tflite", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "layer `squash` (Gaussianize) uses the op erf" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_pickled_weights_are_refused_since_loading_them_could_run_code(tmp_path):
    from edgedistill.export.source import load_source

    path, model = _user_module(tmp_path)
    pickled = {**model.state_dict(), "config": argparse.Namespace(width=4)}  # not just tensors
    torch.save(pickled, tmp_path / "whole-model.pt")
    refusal = r"--weights: .*whole-model.pt is not a plain state dict"
    with pytest.raises(UserInputError, match=refusal):
        load_source(f"{path}:build", tmp_path / "whole-model.pt", "1,8,8")


def test_weights_that_do_not_match_the_module_are_refused_listing_the_keys(tmp_path):
    from safetensors.torch import save_file

    from edgedistill.export.source import load_source

    path, _ = _user_module(tmp_path)
    save_file({"conv.weight": torch.zeros(4, 1, 3, 3)}, tmp_path / "partial.safetensors")
    refusal = r"partial.safetensors does not match the module; missing: conv.bias"
    with pytest.raises(UserInputError, match=refusal):
        load_source(f"{path}:build", tmp_path / "partial.safetensors", "1,8,8")


@pytest.mark.parametrize(
    ("weights", "shape", "expected"),
    [
        (None, "1,8,8", "--weights: needed"),
        ("w.safetensors", None, "--input-shape: needed"),
        ("w.safetensors", "8,8", "--input-shape '8,8': expected C,H,W"),
        ("w.safetensors", "3,8,8", "--input-shape 3,8,8: the module fails"),
        ("missing.safetensors", "1,8,8", "no such file"),
    ],
)
def test_user_module_inputs_are_checked(tmp_path, weights, shape, expected):
    from edgedistill.export.source import load_source

    path, _ = _user_module(tmp_path)
    with pytest.raises(UserInputError, match=expected):
        load_source(f"{path}:build", tmp_path / weights if weights else None, shape)


def test_checkpoint_folder_without_a_student_is_refused(tmp_path):
    from edgedistill.export.source import load_source

    with pytest.raises(UserInputError, match=r"expected student.json and student.safetensors"):
        load_source(str(tmp_path))
