"""Lab failures: an infrastructure failure is never a result; a refused trust is for the user."""

from __future__ import annotations

from edgedistill.errors import EdgeDistillError, UserInputError


class LabInfrastructureError(EdgeDistillError):
    """The lab failed (unreachable, dropped, timed out, runner crashed): no result. Exit code 3."""

    exit_code = 3


class TransientLabError(LabInfrastructureError):
    """A dropped connection or a step that hung: retried for idempotent steps only."""


class LabAccessError(UserInputError):
    """The device refused us or we refused it (unknown host key, adb unauthorized). Exit code 2."""


class UntrustedResultError(EdgeDistillError):
    """A measurement ran but cannot be trusted (invalid protocol, failed audit). Exit code 1."""

    exit_code = 1
