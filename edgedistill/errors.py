"""The two failure kinds the CLI maps to exit codes (bad input 2, goal not met 1), and the
one way a pydantic ValidationError is put into words."""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError


class EdgeDistillError(Exception):
    """Base class of errors that carry a message meant for the user."""

    exit_code = 1


class UserInputError(EdgeDistillError):
    """Bad input: a flag, file or field is wrong. The message names it. Exit code 2."""

    exit_code = 2


class GoalNotMetError(EdgeDistillError):
    """The job ran but its goal failed (e.g. no candidate fits the budget). Exit code 1."""

    exit_code = 1


# What a write fails with when the disk (or the file-size quota) is full or the place is
# read-only: the user frees space or picks another --out, no code changes anything.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


class OutputWriteError(UserInputError):
    """A file could not be written: disk full, file-size quota, read-only place. The message
    names the file. Exit code 2."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path

    @classmethod
    def from_os_error(cls, exc: OSError, path: object = None) -> OutputWriteError | None:
        """The error to raise for `exc` while writing `path` (default: the file `exc` names),
        or None when `exc` is not a failed write."""
        if exc.errno not in WRITE_ERRNOS:
            return None
        return cls(path or exc.filename or "an output file", exc.strerror or str(exc))


class MissingExtraError(UserInputError):
    """An optional dependency is needed; the message names the pip extra."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python module {module!r}, which is not installed: "
            f"pip install 'edgedistill[{extra}]'"
        )


def error_location(item: Mapping[str, Any], empty: str = "(top level)") -> str:
    """One pydantic error's location as dotted text ("a.b.0"), or `empty` at the top level."""
    return ".".join(str(part) for part in item["loc"]) or empty


def describe_validation(
    exc: ValidationError,
    prefix: str = "field ",
    *,
    empty: str = "(top level)",
    sep: str = "; ",
    locations: bool = True,
) -> str:
    """A pydantic error as one text: "field a.b.0: msg; field c: msg" (without locations:
    "msg; msg"). `prefix` and `sep` let callers write "  field x: msg" lines instead."""
    if not locations:
        return sep.join(item["msg"] for item in exc.errors())
    return sep.join(
        f"{prefix}{error_location(item, empty)}: {item['msg']}" for item in exc.errors()
    )
