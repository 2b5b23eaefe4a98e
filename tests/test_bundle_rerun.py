"""`bundle verify --run`: the bundle's artifacts re-run by their runtimes (onnxruntime here) on the
recorded validation sample. The point: a model swapped in together with a rewritten manifest
passes every file check and is still caught, because it computes something else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edgedistill.audit.rerun import output_step, rerun_bundle, tolerance_for
from edgedistill.bundle import write_manifest
from edgedistill.bundle.sample import read_sample, write_sample
from edgedistill.export import EXPORTERS
from edgedistill.quant.prepare import calibrate, prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import build_student, parse_student
from tests.conftest import invoke
from tests.lab_fixtures import manifest_fields

SPEC = "mbv2:d=1,r=16,w=0.5"
SHAPE = (1, 32, 32)
CLASSES = 10
FP32, INT8, COREML = "model.fp32.onnx", "model.int8.onnx", "model.fp16.mlpackage.zip"
ARTIFACTS = [
    {"format": "onnx", "precision": "fp32", "path": FP32},
    {"format": "onnx", "precision": "int8", "path": INT8},
    {"format": "coreml", "precision": "fp16", "path": COREML},
]


def _student(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_student(parse_student(SPEC), SHAPE, CLASSES).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seed-0 student at fp32 and int8 (calibrated on random inputs), and a seed-1 student
    at fp32: the model an attacker, or a mix-up, puts in the bundle's place."""
    folder = tmp_path_factory.mktemp("exported")
    onnx, example = EXPORTERS.get("onnx"), torch.zeros(1, *SHAPE)
    onnx.export(_student(0), example, folder / "seed0.fp32.onnx", precision="fp32")
    onnx.export(_student(1), example, folder / "seed1.fp32.onnx", precision="fp32")
    quantized = prepare(_student(0), QuantScheme())
    calibrate(quantized, [torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(2))])
    onnx.export(quantized, example, folder / "seed0.int8.onnx", precision="int8")
    return {
        FP32: folder / "seed0.fp32.onnx",
        INT8: folder / "seed0.int8.onnx",
        "other": folder / "seed1.fp32.onnx",
    }


def _rewrite_manifest(bundle: Path, **changes: Any) -> None:
    write_manifest(bundle, **{**manifest_fields(bundle), **changes})


@pytest.fixture(scope="module")
def recorded_bundle(exported, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle as a run writes it: both ONNX files with their outputs on 16 inputs recorded by
    onnxruntime, and a Core ML package whose outputs were recorded on a Mac (on this host its
    runtime does not run, so its bytes are never read)."""
    bundle = tmp_path_factory.mktemp("recorded") / "bundle"
    bundle.mkdir()
    for name in (FP32, INT8):
        shutil.copy(exported[name], bundle / name)
    (bundle / COREML).write_bytes(b"a Core ML package, run only on macOS")
    inputs = np.random.default_rng(0).standard_normal((16, *SHAPE)).astype(np.float32)
    outputs = {}
    for name in (FP32, INT8):
        runner = EXPORTERS.get("onnx").host_runner(bundle / name)
        outputs[name] = (runner.predict(inputs), runner.runtime)
    outputs[COREML] = (outputs[FP32][0], "coremltools 9.0 on macOS 15 (CPU and Neural Engine)")
    section = write_sample(bundle, inputs, outputs)
    (bundle / "labels.txt").write_text("".join(f"{k}\n" for k in range(CLASSES)), "utf-8")
    write_manifest(
        bundle,
        device="host-cpu",
        budget_ms=2.0,
        precision="int8",
        input={"name": "input", "shape": [1, *SHAPE], "dtype": "float32"},
        preprocessing={},
        labels=[str(k) for k in range(CLASSES)],
        artifacts=ARTIFACTS,
        measured={},
        validation_sample=section,
    )
    return bundle


@pytest.fixture
def bundle(recorded_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(recorded_bundle, copy)
    return copy


def _run_json(bundle: Path) -> tuple[int, dict[str, Any]]:
    result = invoke("bundle", "verify", str(bundle), "--run", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _by_path(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in document["run"]["artifacts"]}


def test_run_matches_each_runnable_artifact_and_skips_the_rest_naming_the_runtime(
    bundle: Path,
) -> None:
    code, document = _run_json(bundle)
    assert code == 0, document
    results = _by_path(document)
    assert {path: r["status"] for path, r in results.items()} == {
        FP32: "matches",
        INT8: "matches",
        COREML: "skipped",
    }
    assert results[FP32]["runtime"].startswith("onnxruntime")
    assert results[FP32]["max_abs_diff"] <= results[FP32]["tolerance"]
    assert results[FP32]["argmax_agreement"] == 1.0
    assert "output steps" in results[INT8]["tolerance_basis"]
    assert results[COREML]["runtime"] == "coreml" and "does not run" in results[COREML]["detail"]
    assert document["ok"] is True and document["run"]["sample"] == "validation.npz"


def test_run_catches_a_swapped_model_whose_hash_was_rewritten(bundle: Path, exported) -> None:
    shutil.copy(exported["other"], bundle / FP32)  # another student, same architecture
    _rewrite_manifest(bundle)
    plain = invoke("bundle", "verify", str(bundle))
    assert plain.returncode == 0, plain.stdout  # every file agrees with the manifest
    code, document = _run_json(bundle)
    assert code == 1
    result = _by_path(document)[FP32]
    assert result["status"] == "differs"
    assert result["max_abs_diff"] > 100 * result["tolerance"]
    (problem,) = document["problems"]
    assert problem.startswith(f"{FP32}: differs: max |diff|")
    assert _by_path(document)[INT8]["status"] == "matches"
    text = invoke("bundle", "verify", str(bundle), "--run")
    assert text.returncode == 1
    assert f"{FP32}: differs" in text.stdout


def _flip_weight_exponent(model: Path) -> None:
    """Flip one bit of the exponent of one float weight, in place: a same-size file whose
    model parses and computes something else."""
    import onnx

    weights = max(
        (t for t in onnx.load(str(model)).graph.initializer if t.data_type == 1 and t.raw_data),
        key=lambda tensor: len(tensor.raw_data),
    )
    data = bytearray(model.read_bytes())
    at = data.find(weights.raw_data)
    assert at >= 0
    data[at + 3] ^= 0x40  # float32 little-endian: byte 3 holds the sign and exponent bits
    model.write_bytes(bytes(data))


def test_run_reports_a_flipped_byte_with_the_file_check(bundle: Path) -> None:
    _flip_weight_exponent(bundle / FP32)
    plain = invoke("bundle", "verify", str(bundle))
    assert plain.returncode == 1 and f"{FP32}: sha256 mismatch" in plain.stdout
    code, document = _run_json(bundle)
    assert code == 1
    assert any(p.startswith(f"{FP32}: sha256 mismatch") for p in document["problems"])
    assert any(p.startswith(f"{FP32}: differs") for p in document["problems"])
    assert _by_path(document)[FP32]["status"] == "differs"


def test_run_fails_an_artifact_its_runtime_cannot_load(bundle: Path) -> None:
    (bundle / FP32).write_bytes(b"not an onnx model")
    _rewrite_manifest(bundle)
    code, document = _run_json(bundle)
    assert code == 1
    assert _by_path(document)[FP32]["status"] == "fails"
    assert document["problems"][0].startswith(f"{FP32}: fails")


def _rerecord(bundle: Path, change: dict[str, Any]) -> None:
    """Rewrite the recorded outputs (`change`: path -> function of the recorded array)."""
    section = json.loads((bundle / "manifest.json").read_text("utf-8"))["validation_sample"]
    inputs, outputs = read_sample(bundle, section)
    runtimes = {path: entry["runtime"] for path, entry in section["outputs"].items()}
    new = {path: (change.get(path, lambda a: a)(a), runtimes[path]) for path, a in outputs.items()}
    _rewrite_manifest(bundle, validation_sample=write_sample(bundle, inputs, new))


def test_int8_tolerance_allows_a_few_requantization_steps_and_no_more(bundle: Path) -> None:
    section = json.loads((bundle / "manifest.json").read_text("utf-8"))["validation_sample"]
    recorded = read_sample(bundle, section)[1][INT8]
    step = output_step(recorded)
    assert step is not None  # dequantized int8 logits lie on a grid
    # Another CPU's integer kernels: two logits a step off, one two steps (as measured between
    # onnxruntime's int8 kernels and its float QDQ reference on the digits student).
    nudged = recorded.copy()
    nudged[0, 0] += step
    nudged[1, 3] -= step
    nudged[2, 5] += 2 * step
    _rerecord(bundle, {INT8: lambda _: nudged})
    assert rerun_bundle(bundle).ok
    moved = recorded.copy()
    moved[3, 7] += 6 * step
    _rerecord(bundle, {INT8: lambda _: moved})
    report = rerun_bundle(bundle)
    assert [r.status for r in report.artifacts if r.path == INT8] == ["differs"]
    assert report.problems[0].startswith(f"{INT8}: differs")


def test_fp32_tolerance_is_tiny_relative_to_the_output_spread(bundle: Path) -> None:
    code, document = _run_json(bundle)
    assert code == 0
    result = _by_path(document)[FP32]
    bump = 3 * result["tolerance"]
    _rerecord(bundle, {FP32: lambda a: a + bump * (np.arange(a.size) == 5).reshape(a.shape)})
    report = rerun_bundle(bundle)
    assert [r.status for r in report.artifacts if r.path == FP32] == ["differs"]


def test_run_without_a_recorded_sample_exits_1_naming_the_missing_section(bundle: Path) -> None:
    (bundle / "validation.npz").unlink()
    _rewrite_manifest(bundle, validation_sample=None)
    code, document = _run_json(bundle)
    assert code == 1
    assert document["run"]["sample"] is None and document["run"]["artifacts"] == []
    (problem,) = document["problems"]
    assert problem.startswith("manifest.json: has no validation_sample section")
    text = invoke("bundle", "verify", str(bundle), "--run")
    assert text.returncode == 1 and "validation_sample" in text.stdout
    assert invoke("bundle", "verify", str(bundle)).returncode == 0  # the files alone are fine


def test_run_with_an_unreadable_sample_file_exits_1_naming_it(bundle: Path) -> None:
    (bundle / "validation.npz").write_bytes(b"not a numpy archive")
    _rewrite_manifest(bundle)
    code, document = _run_json(bundle)
    assert code == 1
    assert document["problems"][0].startswith(f"{bundle / 'validation.npz'}: not a readable")


def test_run_with_a_malformed_sample_section_exits_2_naming_the_field(bundle: Path) -> None:
    section = json.loads((bundle / "manifest.json").read_text("utf-8"))["validation_sample"]
    del section["outputs"]
    _rewrite_manifest(bundle, validation_sample=section)
    result = invoke("bundle", "verify", str(bundle), "--run")
    assert result.returncode == 2
    assert "validation_sample.outputs" in result.stderr and "Traceback" not in result.stderr


def test_artifact_without_recorded_outputs_is_reported_not_recorded(bundle: Path) -> None:
    section = json.loads((bundle / "manifest.json").read_text("utf-8"))["validation_sample"]
    inputs, outputs = read_sample(bundle, section)
    kept = {FP32: (outputs[FP32], section["outputs"][FP32]["runtime"])}
    _rewrite_manifest(bundle, validation_sample=write_sample(bundle, inputs, kept))
    code, document = _run_json(bundle)
    assert code == 0
    assert _by_path(document)[INT8]["status"] == "not recorded"


@pytest.mark.parametrize(
    ("precision", "recorded", "expected"),
    [
        ("fp32", np.array([[-2.0, 8.0], [0.5, 1.0]]), 1e-4 * 10.0),
        ("fp16", np.array([[-2.0, 8.0], [0.5, 1.0]]), 1e-2 * 10.0),
        ("int8", np.array([[0.25, -0.5], [0.5, 2.75]]), 4 * 0.25),
        ("int8", np.array([[0.1, 0.37], [1.003, 2.9]]), 4 * 2.8 / 255),  # no grid: spread / 255
        ("fp32", np.full((2, 3), 5.0), 1e-4 * 5.0),  # one value everywhere: scaled by its size
    ],
)
def test_tolerance_for_each_precision(precision: str, recorded, expected: float) -> None:
    assert tolerance_for(precision, recorded).max_abs_diff == pytest.approx(expected)
