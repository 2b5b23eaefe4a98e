import pytest

from edgedistill.errors import UserInputError
from edgedistill.registry import Registry


def test_registry_refuses_duplicate_names():
    registry: Registry[int] = Registry("thing")
    registry.add("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("alpha", 2)


def test_registry_suggests_close_names_for_unknown_ones():
    registry: Registry[int] = Registry("loss")
    registry.add("fitnet", 1)
    registry.add("kd", 2)
    with pytest.raises(UserInputError) as error:
        registry.get("fitnt")
    assert "did you mean fitnet" in str(error.value)
    assert "unknown loss 'fitnt'" in str(error.value)


def test_shipped_registries_hold_the_first_version_entries():
    from edgedistill.distill.losses import LOSSES
    from edgedistill.export import EXPORTERS
    from edgedistill.students import FAMILIES

    assert {"kd", "ce"} <= set(LOSSES.names())
    assert "onnx" in EXPORTERS
    assert "mbv2" in FAMILIES
