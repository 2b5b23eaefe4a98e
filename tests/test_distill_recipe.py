"""The recipe's distill section: losses with weights and parameters, training settings; bad
entries are refused with the field named."""

from __future__ import annotations

import pytest
import yaml

from edgedistill.distill.losses import check_losses, loss_params
from edgedistill.errors import UserInputError
from edgedistill.tasks.task import load_recipe
from tests.conftest import TINY_RECIPE


def recipe_with(tmp_path, distill: dict):
    document = yaml.safe_load(TINY_RECIPE.read_text())
    document["distill"] = {"train": document["distill"]["train"], **distill}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def refused(tmp_path, distill: dict, *needles: str) -> None:
    """Refused when the recipe is read, or when distill checks its losses (before training)."""
    path = str(recipe_with(tmp_path, distill))
    with pytest.raises(UserInputError) as error:
        check_losses(load_recipe(path).distill.losses, path)
    for needle in needles:
        assert needle in str(error.value), str(error.value)


def test_losses_with_weights_and_parameters_are_read(tmp_path):
    losses = [
        {"name": "kd", "temperature": 2.0, "alpha": 0.5},
        {"name": "fitnet", "weight": 0.5, "pairs": ["features.2=layers.1"]},
        "born-again",
    ]
    spec = load_recipe(str(recipe_with(tmp_path, {"losses": losses}))).distill
    assert [(s.name, s.weight) for s in spec.losses] == [
        ("kd", 1.0), ("fitnet", 0.5), ("born-again", 1.0)
    ]  # fmt: skip
    assert loss_params(spec.losses[0]).temperature == 2.0
    assert loss_params(spec.losses[1]).pairs[0].teacher == "layers.1"


def test_the_single_loss_short_form_still_reads():
    spec = load_recipe(str(TINY_RECIPE)).distill
    assert spec.losses[0].name == "kd" and loss_params(spec.losses[0]).temperature == 4.0


def test_unknown_loss_is_refused_with_a_suggestion(tmp_path):
    refused(tmp_path, {"losses": [{"name": "dkdd"}]}, "distill.losses.0", "did you mean dkd")


def test_negative_weight_is_refused(tmp_path):
    refused(tmp_path, {"losses": [{"name": "kd", "weight": -1}]}, "distill.losses.0.weight")


@pytest.mark.parametrize("temperature", [0, -2])
def test_temperature_must_be_positive(tmp_path, temperature):
    losses = [{"name": "kd", "temperature": temperature}]
    refused(tmp_path, {"losses": losses}, "distill.losses.0", "temperature", "greater than 0")


def test_unknown_loss_parameter_is_refused(tmp_path):
    refused(tmp_path, {"losses": [{"name": "kd", "temprature": 3}]}, "temprature")


def test_malformed_layer_pair_is_refused(tmp_path):
    refused(tmp_path, {"losses": [{"name": "at", "pairs": ["features.2"]}]}, "STUDENT_LAYER")


def test_two_procedures_are_refused(tmp_path):
    refused(tmp_path, {"losses": ["kd", "born-again", "progressive"]}, "at most one procedure")


def test_bad_training_settings_name_the_field(tmp_path):
    document = yaml.safe_load(TINY_RECIPE.read_text())
    document["distill"]["train"]["optimizer"] = "adam"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(UserInputError, match="distill.train.optimizer"):
        load_recipe(str(path))
