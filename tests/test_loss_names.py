"""Loss lists in help and messages come from the registry, so a new loss shows up by itself."""

from edgedistill.cli.distill import _LOSS_HELP
from edgedistill.distill.losses import LOSSES, loss_names


def test_kinds_split_the_registry():
    terms, procedures = loss_names("term"), loss_names("procedure")
    assert sorted(terms + procedures) == sorted(LOSSES)
    assert {"born-again", "progressive"} <= set(procedures)


def test_teacher_and_layer_filters():
    assert loss_names("term", needs_teacher=False) == ["ce"]
    assert {"fitnet", "at"} <= set(loss_names("term", compares_layers=True))
    assert "kd" in loss_names("term", needs_teacher=True, compares_layers=False)
    assert "fitnet" not in loss_names("term", compares_layers=False)


def test_help_names_every_loss():
    for name in LOSSES:
        assert name in _LOSS_HELP
