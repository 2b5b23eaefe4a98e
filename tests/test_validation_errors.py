"""describe_validation: the one way a pydantic error is put into words."""

from pydantic import BaseModel, ConfigDict, ValidationError

from edgedistill.errors import describe_validation


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    b: list[int]


class _Outer(BaseModel):
    a: _Inner
    c: int


def _error() -> ValidationError:
    try:
        _Outer.model_validate({"a": {"b": ["x"]}, "c": "y"})
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a ValidationError")


def test_names_each_field_with_its_dotted_location():
    text = describe_validation(_error())
    assert text.startswith("field a.b.0: ")
    assert "; field c: " in text


def test_prefix_separator_and_bare_messages():
    exc = _error()
    assert describe_validation(exc, "  field ", sep="\n").splitlines()[1].startswith("  field c: ")
    assert "field" not in describe_validation(exc, locations=False)


def test_top_level_error_uses_the_empty_text():
    try:
        _Inner.model_validate("not a mapping")
    except ValidationError as exc:
        assert describe_validation(exc, "p ", empty="(all)").startswith("p (all): ")
