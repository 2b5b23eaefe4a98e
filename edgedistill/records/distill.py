"""A distillation run's record: `result.json` of `edgedistill distill` and of `fit`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeacherOutputs(_Strict):
    mode: Literal["cached", "online", "none"]
    reason: str


class StageResult(_Strict):
    """One trained stage (one student; several for born-again and progressive)."""

    name: str
    student: str
    teacher: str
    accuracy: float  # PyTorch student on the test split
    val_accuracy: float
    teacher_accuracy: float | None
    best_epoch: int
    epochs_run: int
    seconds: float
    teacher_outputs: TeacherOutputs
    history: list[dict[str, float]] = Field(default_factory=list)  # per epoch: loss, val acc
    resumed: bool = False
    init: str | None = None  # distill.init teacher: what was copied from the teacher


class TeacherRow(_Strict):
    name: str
    accuracy: float | None
    params: int | None
    macs: int | None


class DistillResult(_Strict):
    schema_version: Literal[1] = 1
    task: str
    student: str
    params: int
    macs: int
    method: str  # the loss names joined by +
    losses: list[dict[str, Any]]
    accuracy: float
    val_accuracy: float
    teacher_accuracy: float | None
    retention: float | None
    epochs_run: int
    best_epoch: int
    train_seconds: float
    labels_fraction: float | None
    labeled_samples: int
    train_samples: int
    teacher_outputs: TeacherOutputs
    teachers: list[TeacherRow]
    stages: list[StageResult]
    resumed: bool
    seed: int | None
    out: str
    seconds: float = 0.0
    world_size: int = 1
    device: str = "cpu"
    notes: list[str] = Field(default_factory=list)  # e.g. how the teacher's input was chosen
