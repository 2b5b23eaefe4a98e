"""`export.json`: what `edgedistill export` wrote, how each artifact was validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgedistill.records.artifact import Artifact


class ExportResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    edgedistill_version: str
    source: str  # the checkpoint or module exported
    device: str | None
    precision: str
    task: str | None  # the recipe whose data validated and scored the artifacts
    input_shape: list[int]
    validation_sample: str  # where the compared inputs came from
    student_accuracy: float | None  # the PyTorch model on the test split
    artifacts: list[Artifact]
    pending: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
