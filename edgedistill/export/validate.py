"""Check an exported ONNX model against the PyTorch student it came from, and score it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

# Tolerance on logits for an fp32 export: different kernels reorder float sums, nothing more.
FP32_TOLERANCE = 1e-4
COMPARE_SAMPLES = 64  # the fixed validation sample: the first N samples of the val split


@dataclass(frozen=True)
class OnnxValidation:
    max_abs_diff: float
    argmax_agreement: float
    accuracy: float
    samples_compared: int
    runtime: str


def onnx_predictions(path: Path, x):
    """Logits of the ONNX model for every sample of the tensor `x`, run one at a time (batch 1)."""
    import numpy as np

    from edgedistill.lab.host_bench import onnx_session

    session = onnx_session(path, threads=1)
    input_name = session.get_inputs()[0].name
    batch = x.numpy().astype(np.float32)
    return np.concatenate(
        [session.run(None, {input_name: batch[i : i + 1]})[0] for i in range(len(batch))]
    )


def validate_onnx(
    path: Path, student: nn.Module, compare: Dataset, test: Dataset
) -> OnnxValidation:
    """Logit difference and argmax agreement on a fixed sample of `compare`; accuracy on `test`."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgedistill.tasks.data import iter_batches

    student.eval()
    exported, reference = [], []
    for x, _ in iter_batches(compare, limit=COMPARE_SAMPLES):
        with torch.no_grad():
            reference.append(student(x).numpy())
        exported.append(onnx_predictions(path, x))
    correct = total = 0
    for x, y in iter_batches(test):
        predicted = onnx_predictions(path, x).argmax(1)
        correct += int((predicted == y.numpy()).sum())
        total += len(y)
    exported_logits, reference_logits = np.concatenate(exported), np.concatenate(reference)
    return OnnxValidation(
        max_abs_diff=float(np.abs(exported_logits - reference_logits).max()),
        argmax_agreement=float((exported_logits.argmax(1) == reference_logits.argmax(1)).mean()),
        accuracy=correct / total,
        samples_compared=len(exported_logits),
        runtime=f"onnxruntime {ort.__version__} CPUExecutionProvider",
    )
