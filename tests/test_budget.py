import pytest

from edgedistill.budget import format_ms, parse_budget
from edgedistill.errors import UserInputError


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("10ms", 10.0),
        ("500us", 0.5),
        ("0.01s", 10.0),
        ("2 ms", 2.0),
        ("1e-3s", 1.0),
        ("250µs", 0.25),
    ],
)
def test_budget_accepts_units(text, expected_ms):
    assert parse_budget(text) == pytest.approx(expected_ms)


@pytest.mark.parametrize("text", ["10parsecs", "-3ms", "0ms", "ms", "10", "", "1e999s", "3 m s"])
def test_budget_refuses_malformed_values_naming_the_flag(text):
    with pytest.raises(UserInputError) as error:
        parse_budget(text)
    assert "--budget" in str(error.value)


def test_format_ms_switches_to_microseconds_below_one_millisecond():
    assert format_ms(0.25) == "250us"
    assert format_ms(12.0) == "12ms"
