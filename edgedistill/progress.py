"""The progress callback protocol library code reports long work through (the CLI draws it)."""

from __future__ import annotations

from typing import Protocol


class ProgressFn(Protocol):
    def __call__(self, stage: str, done: int, total: int | None, note: str = "") -> None: ...


def no_progress(stage: str, done: int, total: int | None, note: str = "") -> None:
    """Default callback: report nothing."""
