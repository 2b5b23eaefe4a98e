"""Artifact: one exported file, its format, precision and validation figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str
    precision: str
    path: str  # relative to the run directory in summaries, absolute while a run is in flight
    sha256: str | None = None
    bytes: int | None = None
    input_name: str = "input"
    output_name: str = "logits"
    input_shape: list[int] = []
    built_from: str | None = None  # the artifact this one was built from (TensorRT <- ONNX)
    # How it was checked: "outputs" compared with the PyTorch student by its runtime on this
    # host, or "structural" (loads; inputs, outputs, shapes and precision as declared) where
    # the runtime does not run here (Core ML off macOS).
    validation: Literal["outputs", "structural"] | None = None
    max_abs_diff: float | None = None  # vs the PyTorch student on the validation sample
    argmax_agreement: float | None = None
    # sentence embeddings: the lowest cosine between its output and the student's, per sample
    min_cosine: float | None = None
    samples_compared: int | None = None
    accuracy: float | None = None  # on the test split, run by the artifact's runtime
    tolerance: dict[str, Any] | None = None  # what the figures had to meet for this precision
    validated_with: str | None = None  # e.g. "onnxruntime 1.22.0 CPUExecutionProvider"
    # A file with integer input and output (full-integer TFLite): how a caller quantizes the
    # preprocessed input and dequantizes the logits: {"input": {"dtype", "scale",
    # "zero_point"}, "output": {...}}
    io_quantization: dict[str, dict[str, Any]] | None = None
    notes: list[str] = []

    @classmethod
    def written(
        cls, format: str, precision: str, out: Path, input_shape, **details: Any
    ) -> Artifact:
        """The artifact an exporter has just written at `out` (its size read from disk)."""
        return cls(
            format=format,
            precision=precision,
            path=str(out),
            bytes=out.stat().st_size,
            input_shape=list(input_shape),
            **details,
        )
