"""A profile's formats, runtimes and transport are checked against the registries that define
them (no list of names in the schema), with the file and field named and a suggestion."""

from __future__ import annotations

import pytest
import yaml

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS
from edgedistill.fit.profile_check import check_profile, known_runtimes, load_device
from edgedistill.lab.transports import TRANSPORTS
from edgedistill.profiles import load_profile_file, profile_path, shipped_profile_names


@pytest.mark.parametrize("name", shipped_profile_names())
def test_every_shipped_profile_names_only_registered_things(name):
    profile = load_device(name)
    assert set(profile.deploy.formats) <= set(EXPORTERS.names())
    assert set(profile.runtimes) <= set(known_runtimes())
    assert profile.lab.transport in [*TRANSPORTS.names(), "manual"]


def test_runtimes_are_those_the_exporters_artifacts_run_on():
    assert known_runtimes() == sorted({EXPORTERS.get(n).runs_on for n in EXPORTERS})
    assert {"onnxruntime", "tflite", "coreml", "tensorrt", "edgetpu"} <= set(known_runtimes())


@pytest.mark.parametrize(
    ("section", "value", "field", "hint"),
    [
        (("deploy", "formats"), ["onnx", "tflit"], "deploy.formats.1", "did you mean tflite"),
        (("runtimes",), ["onnxruntime", "nnapi"], "runtimes.1", "unknown runtime 'nnapi'"),
        (("lab", "transport"), "sssh", "lab.transport", "did you mean ssh"),
    ],
)
def test_unregistered_names_are_refused_naming_file_and_field(
    tmp_path, section, value, field, hint
):
    document = yaml.safe_load(profile_path("rpi5").read_text())
    target = document
    for key in section[:-1]:
        target = target[key]
    target[section[-1]] = value
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(UserInputError) as error:
        check_profile(load_profile_file(path), str(path))
    message = str(error.value)
    assert str(path) in message and f"field {field}" in message and hint in message
