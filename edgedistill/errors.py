"""The two failure kinds the CLI maps to exit codes: bad input (2) and a goal not met (1)."""


class EdgeDistillError(Exception):
    """Base class of errors that carry a message meant for the user."""

    exit_code = 1


class UserInputError(EdgeDistillError):
    """Bad input: a flag, file or field is wrong. The message names it. Exit code 2."""

    exit_code = 2


class GoalNotMetError(EdgeDistillError):
    """The job ran but its goal failed (e.g. no candidate fits the budget). Exit code 1."""

    exit_code = 1


class MissingExtraError(UserInputError):
    """An optional dependency is needed; the message names the pip extra."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python module {module!r}, which is not installed: "
            f"pip install 'edgedistill[{extra}]'"
        )
