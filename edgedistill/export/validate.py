"""Check an exported ONNX model against the PyTorch student it came from, and score it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.tasks.data import Split

# Tolerance on logits for an fp32 export: different kernels reorder float sums, nothing more.
FP32_TOLERANCE = 1e-4


@dataclass(frozen=True)
class OnnxValidation:
    max_abs_diff: float
    argmax_agreement: float
    accuracy: float
    samples_compared: int
    runtime: str


def onnx_predictions(path: Path, x) -> list:
    """Logits of the ONNX model for every sample of `x`, run one at a time (batch 1)."""
    import numpy as np

    from edgedistill.lab.host_bench import onnx_session

    session = onnx_session(path, threads=1)
    input_name = session.get_inputs()[0].name
    batch = x.numpy().astype(np.float32)
    return np.concatenate(
        [session.run(None, {input_name: batch[i : i + 1]})[0] for i in range(len(batch))]
    )


def validate_onnx(path: Path, student: nn.Module, compare: Split, test: Split) -> OnnxValidation:
    """Max abs logit difference and argmax agreement on `compare`; accuracy on `test`."""
    import numpy as np
    import onnxruntime as ort

    from edgedistill.distill.trainer import predict_logits

    reference = predict_logits(student, compare.x).numpy()
    exported = onnx_predictions(path, compare.x)
    test_logits = onnx_predictions(path, test.x)
    return OnnxValidation(
        max_abs_diff=float(np.abs(exported - reference).max()),
        argmax_agreement=float((exported.argmax(1) == reference.argmax(1)).mean()),
        accuracy=float((test_logits.argmax(1) == test.y.numpy()).mean()),
        samples_compared=len(compare.x),
        runtime=f"onnxruntime {ort.__version__} CPUExecutionProvider",
    )
