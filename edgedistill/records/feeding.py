"""TeacherFeeding: how the run decided what the teacher is fed (declared, detected, or given)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TeacherFeeding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # declared: --teacher-preprocess or the recipe's teacher.preprocess; detected: the best
    # preset on the val split; recipe: the recipe's preprocessing section; trained-here: the
    # built-in teacher learns on the task's preprocessing; dataset: a Python dataset gives
    # model inputs itself, nothing to choose; tokenizer: a text teacher's own tokenizer
    how: Literal["declared", "detected", "recipe", "trained-here", "dataset", "tokenizer"]
    preset: str | None = None  # the preset used, when one was (declared or detected)
    layout: Literal["nchw", "nhwc"] = "nchw"
    # detection: val accuracy of the teacher under each preset, on `samples` val samples
    accuracy_by_preset: dict[str, float] = Field(default_factory=dict)
    samples: int = 0
    standard_error: float | None = None  # binomial standard error of the best preset's figure
