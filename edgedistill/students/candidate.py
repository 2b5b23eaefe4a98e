"""A student candidate: family + knobs, with a stable spec string such as `mbv2:d=2,r=32,w=0.5`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgedistill.errors import UserInputError

_SPEC = re.compile(r"^([a-z][a-z0-9_]*):(.*)$")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_value(text: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class Candidate:
    """A student architecture: its family name and hyper-parameters (knobs)."""

    family: str
    knobs: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        body = ",".join(f"{key}={_format_value(self.knobs[key])}" for key in sorted(self.knobs))
        return f"{self.family}:{body}"

    def __hash__(self) -> int:
        return hash(self.spec)

    @classmethod
    def parse(cls, spec: str, flag: str = "--student") -> Candidate:
        match = _SPEC.match(spec.strip())
        if match is None:
            raise UserInputError(
                f"{flag}: cannot read {spec!r} as a student spec; expected FAMILY:KEY=VALUE,... "
                "as printed by `edgedistill search`, e.g. mbv2:d=2,r=32,w=0.5"
            )
        family, body = match.groups()
        knobs: dict[str, Any] = {}
        for part in filter(None, body.split(",")):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise UserInputError(f"{flag}: {part!r} in {spec!r} is not KEY=VALUE")
            knobs[key.strip()] = _parse_value(value.strip())
        return cls(family, knobs)
