"""Device profiles: shipped ones validate, bad files are refused by file and field, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edgedistill.cli.profiles import app
from edgedistill.errors import UserInputError
from edgedistill.profiles import (
    DeviceProfile,
    _shipped_dir,
    load_profile,
    load_profile_file,
    shipped_profile_names,
)

EXPECTED_DEVICES = {
    "host-cpu",
    "jetson-orin-nano",
    "jetson-agx-orin",
    "coral-edgetpu",
    "rpi5",
    "iphone-15-pro",
    "pixel-8",
}

# The runtime a device needs for each format after onnx in its deploy chain.
RUNTIME_FOR_FORMAT = {"tensorrt": "tensorrt", "tflite": "tflite", "coreml": "coreml"}

runner = CliRunner()


def _one_line(text: str) -> str:
    """Undo rich's line wrapping on stderr so a message can be searched as one line."""
    return " ".join(text.split())


def _valid_profile_data() -> dict:
    return yaml.safe_load((_shipped_dir() / "rpi5.yaml").read_text(encoding="utf-8"))


def _write(directory: Path, filename: str, data: dict) -> Path:
    path = directory / filename
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_every_expected_device_is_shipped() -> None:
    assert set(shipped_profile_names()) >= EXPECTED_DEVICES


@pytest.mark.parametrize("name", shipped_profile_names())
def test_shipped_profile_validates_from_the_cli(name: str) -> None:
    path = _shipped_dir() / f"{name}.yaml"
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{path}: valid profile {name}"


@pytest.mark.parametrize("name", shipped_profile_names())
def test_shipped_profile_is_self_consistent(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name, "the file name and the profile's name must agree"
    assert profile.deploy.precision in profile.compute.peak_ops_per_s, (
        "the latency model needs a peak figure at the deployment precision"
    )
    for fmt in profile.deploy.formats[1:]:
        assert RUNTIME_FOR_FORMAT[fmt] in profile.runtimes, f"{fmt} deployed but no runtime"
    assert not profile.latency.calibrated, "shipped coefficients are datasheet guesses"


@pytest.mark.parametrize(
    ("name", "formats", "precision", "transport"),
    [
        ("jetson-orin-nano", ["onnx", "tensorrt"], "fp16", "ssh"),
        ("jetson-agx-orin", ["onnx", "tensorrt"], "int8", "ssh"),
        ("coral-edgetpu", ["onnx", "tflite"], "int8", "ssh"),
        ("rpi5", ["onnx", "tflite"], "int8", "ssh"),
        ("iphone-15-pro", ["onnx", "coreml"], "fp16", "manual"),
        ("pixel-8", ["onnx", "tflite"], "int8", "adb"),
    ],
)
def test_device_deploys_the_expected_chain(
    name: str, formats: list[str], precision: str, transport: str
) -> None:
    profile = load_profile(name)
    assert profile.deploy.formats == formats
    assert profile.deploy.precision == precision
    assert profile.lab.transport == transport


def test_coral_requires_full_int8_and_iphone_targets_ios17() -> None:
    coral = load_profile("coral-edgetpu")
    assert coral.constraints.full_int8_only
    assert set(coral.compute.peak_ops_per_s) == {"int8"}
    assert "edgetpu" in coral.runtimes
    assert load_profile("iphone-15-pro").constraints.min_deployment_target == "iOS17"


def test_peaks_are_dense_datasheet_figures() -> None:
    # 20 dense INT8 TOPS (40 sparse) and 85 dense GPU INT8 TOPS (170 sparse), not the headlines.
    assert load_profile("jetson-orin-nano").compute.peak_ops_per_s["int8"] == pytest.approx(20e12)
    assert load_profile("jetson-agx-orin").compute.peak_ops_per_s["int8"] == pytest.approx(85e12)
    assert load_profile("coral-edgetpu").compute.peak_ops_per_s["int8"] == pytest.approx(4e12)


@pytest.mark.parametrize(
    ("filename", "edit", "field", "complaint"),
    [
        ("unknown-field.yaml", lambda d: d.update(colour="red"), "colour", "Extra inputs"),
        (
            "unknown-nested-field.yaml",
            lambda d: d["compute"].update(tops=4),
            "compute.tops",
            "Extra inputs",
        ),
        ("missing-compute.yaml", lambda d: d.pop("compute"), "compute", "Field required"),
        (
            "wrong-type.yaml",
            lambda d: d["compute"]["peak_ops_per_s"].update(fp32="fast"),
            "compute.peak_ops_per_s.fp32",
            "valid number",
        ),
        (
            "tflite-first.yaml",
            lambda d: d["deploy"].update(formats=["tflite", "onnx"]),
            "deploy",
            "must start with onnx",
        ),
    ],
)
def test_validate_refuses_bad_profile_naming_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filename, edit, field, complaint
) -> None:
    monkeypatch.chdir(tmp_path)  # a short relative path keeps rich from wrapping it
    data = _valid_profile_data()
    edit(data)
    _write(tmp_path, filename, data)

    result = runner.invoke(app, ["validate", filename])

    assert result.exit_code == 2
    assert result.stdout == ""
    message = _one_line(result.stderr)
    assert f"{filename}: invalid device profile" in message
    assert f"field {field}:" in message
    assert complaint in message
    assert "Traceback" not in result.output


def test_validate_json_reports_a_refusal_as_one_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _valid_profile_data()
    data["compute"]["cpu_cores"] = 0
    _write(tmp_path, "no-cores.yaml", data)

    result = runner.invoke(app, ["validate", "no-cores.yaml", "--json"])

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["file"] == "no-cores.yaml"
    assert "field compute.cpu_cores" in document["error"]


def test_validate_json_on_a_valid_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "ok.yaml", _valid_profile_data())
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"file": str(path), "valid": True, "name": "rpi5"}


def test_load_profile_file_error_names_file_and_field(tmp_path: Path) -> None:
    data = _valid_profile_data()
    data["compute"]["peak_ops_per_s"]["fp32"] = "fast"
    path = _write(tmp_path, "slow.yaml", data)
    with pytest.raises(UserInputError, match=r"slow\.yaml(.|\n)*compute\.peak_ops_per_s\.fp32"):
        load_profile_file(path)


def test_validate_refuses_a_file_that_is_not_a_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("list.yaml").write_text("- onnx\n- tflite\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "list.yaml"])
    assert result.exit_code == 2
    assert "list.yaml: a device profile must be a YAML mapping" in _one_line(result.stderr)


def test_unknown_device_suggests_the_closest_names() -> None:
    result = runner.invoke(app, ["show", "jetson-orin"])
    assert result.exit_code == 2
    assert result.stdout == ""
    message = _one_line(result.stderr)
    assert "unknown device 'jetson-orin'" in message
    assert "did you mean" in message
    suggestion = message.split("did you mean", 1)[1].split("?", 1)[0]
    assert "jetson-orin-nano" in suggestion
    assert "jetson-agx-orin" in suggestion
    assert "rpi5" not in suggestion


def test_load_profile_suggestion_without_the_cli() -> None:
    with pytest.raises(UserInputError, match="did you mean .*jetson-orin-nano") as caught:
        load_profile("jetson-orin")
    assert "--device" in str(caught.value)


def test_own_profile_file_loads_by_path(tmp_path: Path) -> None:
    data = _valid_profile_data()
    data["name"] = "my-board"
    data["compute"]["cpu_cores"] = 2
    path = _write(tmp_path, "my-board.yaml", data)

    profile = load_profile(str(path))
    assert (profile.name, profile.compute.cpu_cores) == ("my-board", 2)

    result = runner.invoke(app, ["show", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "my-board"


def test_missing_profile_path_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in _one_line(result.stderr)


def test_list_json_holds_every_shipped_profile() -> None:
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == shipped_profile_names()
    assert {row["name"] for row in rows} >= EXPECTED_DEVICES
    by_name = {row["name"]: row for row in rows}
    assert by_name["coral-edgetpu"] == {
        "name": "coral-edgetpu",
        "description": load_profile("coral-edgetpu").description,
        "formats": ["onnx", "tflite"],
        "precision": "int8",
        "runtimes": ["tflite", "edgetpu"],
        "transport": "ssh",
    }


def test_list_table_shows_every_profile() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.stderr
    for name in shipped_profile_names():
        assert name in result.stdout
    assert "onnx -> tensorrt" in result.stdout
    assert "adb" in result.stdout


@pytest.mark.parametrize("name", shipped_profile_names())
def test_show_prints_yaml_that_round_trips(name: str) -> None:
    result = runner.invoke(app, ["show", name])
    assert result.exit_code == 0, result.stderr
    assert DeviceProfile.model_validate(yaml.safe_load(result.stdout)) == load_profile(name)


def test_show_json_round_trips() -> None:
    result = runner.invoke(app, ["show", "jetson-agx-orin", "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert DeviceProfile.model_validate(document) == load_profile("jetson-agx-orin")
