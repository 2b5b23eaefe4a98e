"""RunSummary: the `summary.json` a `fit` run writes (schema in DESIGN.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edgedistill.records.artifact import Artifact
from edgedistill.records.evaluation import Evaluation
from edgedistill.records.feeding import TeacherFeeding
from edgedistill.records.measurements import MeasuredLatency
from edgedistill.records.quant import QuantResult


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StudentLatency(MeasuredLatency):
    predicted: float
    calibrated: bool
    margin: float


class TeacherInfo(_Strict):
    params: int
    macs: int
    accuracy: float  # the task's score on the test split: accuracy, or R² (see `metric`)
    metric: str = "accuracy"  # accuracy | r2 (regression)
    metrics: dict[str, float] = Field(default_factory=dict)  # every figure: mae, rmse, r2
    latency_ms: MeasuredLatency
    cache_path: str
    trained_now: bool
    form: str = "builtin"  # builtin | python | onnx
    source: str | None = None  # the user's teacher, as named (FILE.py:FN, module:FN, FILE.onnx)
    feeding: TeacherFeeding | None = None  # how its (and the run's) preprocessing was chosen


class StudentInfo(_Strict):
    spec: str
    family: str
    arch: dict[str, Any]
    params: int
    macs: int
    precision: str
    # The task's score: accuracy, or R² for regression (all `accuracy*` fields below hold it)
    metric: str = "accuracy"
    metrics: dict[str, float] = Field(default_factory=dict)  # the shipped model, PyTorch, test
    accuracy_fp32: float  # the fp32 PyTorch student, test split
    # int8: the calibrated-only (PTQ) student, for comparison with the shipped one (PyTorch)
    accuracy_ptq: float | None = None
    accuracy: float | None  # deployed artifact, run by its runtime on the host
    epochs_run: int
    best_epoch: int


class TaskInfo(_Strict):
    name: str
    task_type: str = "classification"  # regression: `labels` name the outputs
    input_name: str
    input_shape: list[int]
    labels: list[str]
    preprocessing: dict[str, Any]
    split_sizes: dict[str, int]
    data_source: str | None = None
    split: dict[str, Any] | None = None  # how the split was made (given, or seeded stratified)


class RunSummary(_Strict):
    schema_version: Literal[1] = 1
    edgedistill_version: str
    device: str
    budget_ms: float
    fits_budget: bool
    # *_not_deployed: measured, but on another artifact than the one that ships (see notes)
    fits_budget_basis: Literal[
        "measured_p90",
        "measured_p95",
        "measured_p90_not_deployed",
        "measured_p95_not_deployed",
        "predicted",
    ]
    task: TaskInfo
    teacher: TeacherInfo
    student: StudentInfo
    retention: float | None
    latency_ms: StudentLatency
    artifacts: list[Artifact]
    quantization: QuantResult | None = None  # int8 runs: calibration, PTQ and QAT figures
    # classification: per-class figures, the student -> teacher cascade, confidence profile
    evaluation: Evaluation | None = None
    pending: list[str] = Field(default_factory=list, description="formats not produced, and why")
    notes: list[str] = Field(default_factory=list)
    # figures that point at a likely mistake (also in notes): fit/flags.py
    warnings: list[str] = Field(default_factory=list)
    seed: int
    stages_s: dict[str, float]
