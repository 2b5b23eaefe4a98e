"""FleetSummary: the index `fit` writes when it serves several devices (OUT/summary.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceRun(_Strict):
    """One device's run: where it is and its headline figures (the rest in its summary.json)."""

    device: str
    budget_ms: float
    run: str  # the run directory, relative to the index
    fits_budget: bool
    fits_budget_basis: str
    student: str  # the student's spec
    precision: str
    metric: str = "accuracy"
    accuracy: float | None  # deployed artifact, on the test split
    retention: float | None
    p90_ms: float | None  # measured, None when only predicted
    predicted_ms: float
    shared_student_with: str | None = None  # the device whose run distilled this student
    warnings: list[str] = Field(default_factory=list)


class FleetSummary(_Strict):
    schema_version: Literal[1] = 1
    kind: Literal["fleet"] = "fleet"
    edgedistill_version: str
    task: str
    teacher_accuracy: float
    fits_budget: bool  # every device's
    devices: list[DeviceRun]
    stages_s: dict[str, float] = Field(default_factory=dict)  # seconds per device's run
