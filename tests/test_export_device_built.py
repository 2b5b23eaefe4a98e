"""Formats built on (or for) a device: the TensorRT engine script and argv, the Edge TPU
compile command. Engines themselves are built in device_tests/gpu where a GPU is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgedistill.export import EXPORTERS, ExportContext

SCRIPT = Path(__file__).resolve().parent.parent / "targets" / "linux" / "trt_build.py"


def test_device_build_argv_runs_the_device_script_with_the_precision():
    from edgedistill.export.tensorrt import device_build_argv

    assert device_build_argv("/data/m.onnx", "/data/m.engine", "fp16") == [
        "python3", "trt_build.py", "--onnx", "/data/m.onnx", "--engine", "/data/m.engine",
        "--precision", "fp16",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    from edgedistill.students import build_student, parse_student

    path = tmp_path_factory.mktemp("trt") / "model.fp32.onnx"
    student = build_student(parse_student("mbv2:d=1,r=16,w=0.25"), (1, 32, 32), 10)
    EXPORTERS.get("onnx").export(student, torch.zeros(1, 1, 32, 32), path, "fp32")
    return path


def test_device_script_runs_on_the_standard_library_alone_and_says_what_is_missing(
    onnx_file, tmp_path
):
    """`python -S` drops site-packages: the script must still start, find no TensorRT and
    no trtexec here, and say so in its JSON with exit 1, writing no engine."""
    engine = tmp_path / "model.fp16.engine"
    result = subprocess.run(
        [sys.executable, "-S", str(SCRIPT), "--onnx", str(onnx_file), "--engine", str(engine)],
        capture_output=True, text=True, timeout=120, env={"PATH": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert (
        document["ok"] is False
        and "neither the TensorRT Python module nor trtexec" in (document["error"])
    )
    assert not engine.exists() and list(tmp_path.iterdir()) == []


def test_device_script_refuses_a_missing_onnx_with_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-S", str(SCRIPT), "--onnx", str(tmp_path / "no.onnx"), "--engine", "e"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--onnx" in json.loads(result.stdout)["error"]


@pytest.mark.gpu
def test_tensorrt_engine_built_on_this_host_matches_the_student(tmp_path):
    from edgedistill.export._extras import has_module
    from edgedistill.export.chain import export_chain
    from edgedistill.export.tensorrt import cuda_device_count
    from edgedistill.students import build_student, parse_student

    if not has_module("tensorrt") or cuda_device_count() == 0:
        pytest.skip("needs tensorrt and a CUDA GPU on this host")
    torch.manual_seed(0)
    student = build_student(parse_student("mbv2:d=1,r=16,w=0.25"), (1, 32, 32), 10).eval()
    artifacts = export_chain(
        ["onnx", "tensorrt"], "fp16", student, torch.zeros(1, 1, 32, 32), tmp_path, None,
        context=ExportContext(),
    )  # fmt: skip
    engine = artifacts[-1]
    assert engine.built_from == "model.fp32.onnx" and engine.precision == "fp16"
    assert engine.argmax_agreement >= 0.98


def test_edge_tpu_compile_waits_for_the_compiler_and_gives_the_exact_command(monkeypatch):
    from edgedistill.export import edgetpu

    monkeypatch.setattr(edgetpu.shutil, "which", lambda name: None)
    reason = EXPORTERS.get("edgetpu").check("int8", ExportContext())
    assert "edgetpu_compiler is not on PATH" in reason
    assert reason.endswith("edgetpu_compiler -s -o . model.int8.tflite")
    assert edgetpu.compiled_name("model.int8.tflite") == "model.int8_edgetpu.tflite"


def test_edge_tpu_compiler_summary_gives_the_op_mapping():
    from edgedistill.export.edgetpu import mapped_operations

    summary = (
        "Model compiled successfully in 352 ms.\n\n"
        "Number of operations that will run on Edge TPU: 64\n"
        "Number of operations that will run on CPU: 2\n"
    )
    assert mapped_operations(summary) == (64, 2)
    assert mapped_operations("no summary") == (None, None)
