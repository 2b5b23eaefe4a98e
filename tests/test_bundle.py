"""Bundle manifest, verification, `edgedistill bundle verify` and the model card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgedistill.bundle import Manifest, render_model_card, verify_bundle, write_manifest
from edgedistill.bundle.manifest import sha256_file, tool_versions
from edgedistill.cli.bundle import app
from edgedistill.errors import UserInputError

runner = CliRunner()

MODEL_BYTES = bytes(range(256)) * 40  # 10 KiB, not all one value so a flip is a real change


def _manifest_fields() -> dict[str, Any]:
    return {
        "device": "host-cpu",
        "budget_ms": 2.0,
        "precision": "int8",
        "input": {"name": "input", "shape": [1, 1, 32, 32], "dtype": "float32"},
        "preprocessing": {"resize": [32, 32], "mean": [0.5], "std": [0.5]},
        "labels": [str(digit) for digit in range(10)],
        "artifacts": [
            {
                "format": "onnx",
                "precision": "int8",
                "path": "model.int8.onnx",
                "max_abs_diff": 0.01,
                "accuracy": 0.95,
            }
        ],
        "measured": {"p50": 0.4, "p90": 0.5, "p99": 0.7, "measured_on": "host"},
    }


def _make_bundle(bundle_dir: Path) -> Path:
    bundle_dir.mkdir(parents=True)
    (bundle_dir / "model.int8.onnx").write_bytes(MODEL_BYTES)
    (bundle_dir / "MODEL_CARD.md").write_text("# card\n", encoding="utf-8")
    (bundle_dir / "labels.txt").write_text("0\n1\n", encoding="utf-8")
    (bundle_dir / "runner").mkdir()
    (bundle_dir / "runner" / "run.py").write_text("print('hi')\n", encoding="utf-8")
    write_manifest(bundle_dir, **_manifest_fields())
    return bundle_dir


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return _make_bundle(tmp_path / "bundle")


def _read_manifest(bundle_dir: Path) -> dict[str, Any]:
    return json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))


def _write_raw_manifest(bundle_dir: Path, data: dict[str, Any]) -> None:
    (bundle_dir / "manifest.json").write_text(json.dumps(data), encoding="utf-8")


# --- write_manifest -------------------------------------------------------------------------


def test_write_manifest_lists_every_file_sorted_with_hash_and_size(bundle_dir: Path) -> None:
    data = _read_manifest(bundle_dir)
    Manifest.model_validate(data)
    paths = [entry["path"] for entry in data["files"]]
    assert paths == ["MODEL_CARD.md", "labels.txt", "model.int8.onnx", "runner/run.py"]
    model_entry = data["files"][paths.index("model.int8.onnx")]
    assert model_entry["bytes"] == len(MODEL_BYTES)
    assert model_entry["sha256"] == sha256_file(bundle_dir / "model.int8.onnx")
    assert data["artifacts"][0]["sha256"] == model_entry["sha256"]
    assert data["schema_version"] == 2
    assert data["created_utc"].endswith("Z")


def test_write_manifest_leaves_no_temp_files_behind(bundle_dir: Path) -> None:
    write_manifest(bundle_dir, **_manifest_fields())  # rewrite over an existing manifest
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == ["MODEL_CARD.md", "labels.txt", "manifest.json", "model.int8.onnx", "runner"]
    assert verify_bundle(bundle_dir).ok


def test_write_manifest_refuses_artifact_path_not_in_bundle(tmp_path: Path) -> None:
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    (bundle_dir / "model.onnx").write_bytes(b"onnx")
    fields = _manifest_fields()
    fields["artifacts"] = [{"format": "onnx", "path": "bundle/model.onnx"}]
    with pytest.raises(ValueError, match="bundle/model.onnx"):
        write_manifest(bundle_dir, **fields)
    assert not (bundle_dir / "manifest.json").exists()


def test_tool_versions_names_each_tool_without_importing_torch() -> None:
    code = (
        "import sys; from edgedistill.bundle.manifest import tool_versions; "
        "v = tool_versions(); assert 'torch' not in sys.modules, 'torch imported'; print(v)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    versions = tool_versions()
    expected = {"edgedistill", "torch", "numpy", "onnx", "onnxscript", "onnxruntime", "python"}
    converters = {"litert-torch", "ai-edge-litert", "coremltools", "tensorrt"}
    assert set(versions) == expected | converters
    assert versions["python"] == ".".join(str(part) for part in sys.version_info[:3])


# --- verify_bundle --------------------------------------------------------------------------


def test_verify_passes_on_an_intact_bundle(bundle_dir: Path) -> None:
    report = verify_bundle(bundle_dir)
    assert report.ok
    assert report.problems == []
    assert report.checked == 4
    assert report.bundle_dir == bundle_dir


def test_verify_detects_one_flipped_byte_and_names_the_file(bundle_dir: Path) -> None:
    model = bundle_dir / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[1234] ^= 0x01
    model.write_bytes(bytes(data))
    report = verify_bundle(bundle_dir)
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith("model.int8.onnx: sha256 mismatch")


def test_verify_detects_a_file_in_a_subfolder_that_changed_size(bundle_dir: Path) -> None:
    (bundle_dir / "runner" / "run.py").write_text("print('changed')\n", encoding="utf-8")
    report = verify_bundle(bundle_dir)
    assert not report.ok
    assert any(p.startswith("runner/run.py: size") for p in report.problems), report.problems


def test_verify_detects_a_deleted_file(bundle_dir: Path) -> None:
    (bundle_dir / "labels.txt").unlink()
    report = verify_bundle(bundle_dir)
    assert not report.ok
    assert report.problems == ["labels.txt: missing"]


def test_verify_detects_an_extra_unlisted_file(bundle_dir: Path) -> None:
    (bundle_dir / "runner" / "extra.bin").write_bytes(b"\x00")
    report = verify_bundle(bundle_dir)
    assert not report.ok
    assert report.problems == ["runner/extra.bin: present but not listed in the manifest"]


def test_verify_detects_artifact_hash_that_disagrees_with_files(bundle_dir: Path) -> None:
    data = _read_manifest(bundle_dir)
    data["artifacts"][0]["sha256"] = "0" * 64
    _write_raw_manifest(bundle_dir, data)
    report = verify_bundle(bundle_dir)
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith("model.int8.onnx: artifact sha256")


def test_verify_detects_artifact_not_listed_in_files(bundle_dir: Path) -> None:
    data = _read_manifest(bundle_dir)
    data["artifacts"].append({"format": "tflite", "path": "model.tflite", "sha256": "0" * 64})
    _write_raw_manifest(bundle_dir, data)
    report = verify_bundle(bundle_dir)
    assert report.problems == ["model.tflite: artifact not listed in the manifest's files"]


def test_verify_accepts_a_run_dir_holding_bundle(tmp_path: Path) -> None:
    _make_bundle(tmp_path / "run" / "bundle")
    (tmp_path / "run" / "summary.json").write_text("{}", encoding="utf-8")
    report = verify_bundle(tmp_path / "run")
    assert report.ok
    assert report.bundle_dir == tmp_path / "run" / "bundle"


def test_verify_missing_dir_raises_user_input_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UserInputError, match="nowhere"):
        verify_bundle(missing)


def test_verify_dir_without_manifest_raises_user_input_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="manifest.json"):
        verify_bundle(tmp_path)


def test_verify_unknown_manifest_field_raises_naming_the_field(bundle_dir: Path) -> None:
    data = _read_manifest(bundle_dir)
    data["surprise"] = 1
    _write_raw_manifest(bundle_dir, data)
    with pytest.raises(UserInputError, match="field surprise"):
        verify_bundle(bundle_dir)


def test_verify_refuses_file_paths_escaping_the_bundle(bundle_dir: Path) -> None:
    data = _read_manifest(bundle_dir)
    data["files"][0]["path"] = "../outside.txt"
    _write_raw_manifest(bundle_dir, data)
    with pytest.raises(UserInputError, match=r"field files\.0\.path"):
        verify_bundle(bundle_dir)


# --- CLI ------------------------------------------------------------------------------------


def test_cli_verify_ok_exits_0_and_says_how_many_files(bundle_dir: Path) -> None:
    result = runner.invoke(app, ["verify", str(bundle_dir)])
    assert result.exit_code == 0, result.output
    assert "OK: 4 files verified in" in result.stdout


def test_cli_verify_corrupt_bundle_exits_1_and_lists_problems(bundle_dir: Path) -> None:
    (bundle_dir / "labels.txt").write_text("9\n9\n", encoding="utf-8")
    result = runner.invoke(app, ["verify", str(bundle_dir)])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stdout
    assert "labels.txt: sha256 mismatch" in result.stdout


def test_cli_verify_json_prints_one_document(bundle_dir: Path) -> None:
    (bundle_dir / "MODEL_CARD.md").unlink()
    result = runner.invoke(app, ["verify", str(bundle_dir), "--json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document == {
        "ok": False,
        "bundle_dir": str(bundle_dir),
        "checked": 4,
        "problems": ["MODEL_CARD.md: missing"],
    }


def test_cli_verify_json_ok(bundle_dir: Path) -> None:
    result = runner.invoke(app, ["verify", str(bundle_dir.parent), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_cli_verify_missing_dir_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", str(tmp_path / "nowhere"), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "nowhere" in result.stderr


def test_cli_verify_unknown_manifest_field_exits_2_naming_it(bundle_dir: Path) -> None:
    data = _read_manifest(bundle_dir)
    data["surprise"] = 1
    _write_raw_manifest(bundle_dir, data)
    result = runner.invoke(app, ["verify", str(bundle_dir)])
    assert result.exit_code == 2
    assert "surprise" in result.stderr


def test_cli_verify_unparseable_manifest_exits_2(bundle_dir: Path) -> None:
    (bundle_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    result = runner.invoke(app, ["verify", str(bundle_dir)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


# --- model card -----------------------------------------------------------------------------


def _full_summary() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "device": "host-cpu",
        "budget_ms": 2.0,
        "fits_budget": True,
        "teacher": {
            "params": 1_200_000,
            "macs": 35_000_000,
            "accuracy": 0.987,
            "latency_ms": {"p50": 3.1, "p90": 3.4},
        },
        "student": {
            "arch": {"family": "cnn", "widths": [8, 16]},
            "spec": "cnn:w8-16",
            "params": 21_000,
            "macs": 900_000,
            "precision": "int8",
            "accuracy_fp32": 0.975,
            "accuracy": 0.972,
        },
        "retention": 0.985,
        "latency_ms": {
            "predicted": 0.41,
            "p50": 0.38,
            "p90": 0.456,
            "p99": 0.61,
            "measured_on": "host",
            "threads": 1,
        },
        "artifacts": [
            {
                "format": "onnx",
                "precision": "int8",
                "path": "bundle/model.int8.onnx",
                "sha256": "ab" * 32,
                "max_abs_diff": 0.0123,
                "accuracy": 0.972,
            }
        ],
        "task": {
            "name": "digits",
            "input_shape": [1, 1, 32, 32],
            "labels": [str(digit) for digit in range(10)],
            "preprocessing": {"resize": [32, 32], "scale": "x / 16"},
        },
    }


def test_model_card_shows_measured_p90_with_where_it_was_measured() -> None:
    card = render_model_card(_full_summary())
    p90_row = next(line for line in card.splitlines() if line.startswith("| Latency p90"))
    assert "0.456 ms" in p90_row
    assert "measured on host" in p90_row
    predicted_row = next(line for line in card.splitlines() if "predicted" in line.lower())
    assert "0.410 ms" in predicted_row
    assert "digits" in card
    assert "bundle/model.int8.onnx" in card
    assert "not measured" not in card
    for heading in ("## Intended use", "## Input and preprocessing", "## Limitations"):
        assert heading in card


def test_model_card_on_sparse_summary_says_not_measured() -> None:
    card = render_model_card({"device": "coral", "latency_ms": {"predicted": 1.5}})
    p90_row = next(line for line in card.splitlines() if line.startswith("| Latency p90"))
    assert "not measured" in p90_row
    assert "measured on" not in p90_row
    assert "1.500 ms" in card
    assert "No artifacts recorded." in card


@pytest.mark.parametrize("summary", [{}, {"student": None, "latency_ms": [], "artifacts": None}])
def test_model_card_never_raises_on_missing_or_odd_sections(summary: dict[str, Any]) -> None:
    card = render_model_card(summary)
    assert card.startswith("# Model card")
    assert "not measured" in card
