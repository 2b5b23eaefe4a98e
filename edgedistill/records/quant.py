"""QuantResult: what quantizing a distilled student found (calibration, PTQ, QAT)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class QuantResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    precision: Literal["int8"] = "int8"
    scheme: str  # in words: weights and activations, symmetric or not
    method: Literal["qat", "ptq"]  # what the shipped student is: fine-tuned, or calibrated only
    reason: str  # why that method
    calibration_samples: int
    accuracy_fp32: float  # the fp32 student, PyTorch, test split
    accuracy_ptq: float  # calibrated only (fake-quantized in PyTorch), test split
    accuracy_qat: float | None = None  # after QAT (fake-quantized in PyTorch), test split
    accuracy: float  # the shipped quantized student (fake-quantized in PyTorch), test split
    val_accuracy_ptq: float
    val_accuracy_qat: float | None = None
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
