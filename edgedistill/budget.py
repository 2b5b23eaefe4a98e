"""Parse latency budgets such as `10ms`, `500us` or `0.01s` into milliseconds."""

from __future__ import annotations

import math
import re

from edgedistill.errors import UserInputError

_UNIT_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|µs)\s*$")


def parse_budget(text: str, flag: str = "--budget") -> float:
    """Return the budget in milliseconds; raise UserInputError naming `flag` otherwise."""
    match = _PATTERN.match(text)
    if match is None:
        raise UserInputError(
            f"{flag}: cannot read {text!r} as a latency; write a positive number with a unit "
            "s, ms or us, e.g. 10ms, 500us, 0.01s"
        )
    value = float(match.group(1)) * _UNIT_TO_MS[match.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise UserInputError(f"{flag}: the budget must be a positive latency, got {text!r}")
    return value


def format_ms(value_ms: float) -> str:
    """Short human form of a latency in milliseconds."""
    if value_ms < 1.0:
        return f"{value_ms * 1000:.0f}us"
    return f"{value_ms:.3g}ms"
