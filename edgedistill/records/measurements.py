"""Latency figures as measured (host or lab device), and what one fit run measured."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LatencyHistogram(BaseModel):
    """The per-run times of a measurement, binned (the report draws it)."""

    model_config = ConfigDict(extra="forbid")

    edges_ms: list[float]
    counts: list[int]


class MeasuredLatency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    measured_on: str | None = None  # None: not measured
    threads: int | None = None
    runs: int | None = None
    runtime: str | None = None
    # What was timed: format, precision and sha256 of the file (a TensorRT engine built on the
    # device: the engine's); deployed False when it stands in for the artifact that ships.
    format: str | None = None
    precision: str | None = None
    artifact_sha256: str | None = None
    deployed: bool | None = None
    engine_build: dict[str, str | float | bool | None] | None = None  # built on the device
    # Measured on a lab device (fit --lab FILE --target NAME): how far to trust the figures.
    p95: float | None = None  # only where the tool reports no p90 (TFLite benchmark_model)
    target: str | None = None
    validity: Literal["valid", "unverified"] | None = None  # invalid results are refused
    validity_reasons: list[str] = Field(default_factory=list)
    audit: Literal["passed", "skipped"] | None = None  # device outputs vs the host's
    audit_detail: str | None = None
    by_target: dict[str, MeasuredLatency] = Field(default_factory=dict)  # several --target
    histogram: LatencyHistogram | None = None  # where the per-run times are known


class Measurements(BaseModel):
    """The measure stage of `fit`: the deployed student and the teacher, timed the same way."""

    model_config = ConfigDict(extra="forbid")

    student: MeasuredLatency = Field(default_factory=MeasuredLatency)
    teacher: MeasuredLatency = Field(default_factory=MeasuredLatency)
    notes: list[str] = Field(default_factory=list)
