"""ONNX export with torch.onnx's dynamo exporter: the hub format every other chain starts from."""

from __future__ import annotations

import logging
from pathlib import Path

from edgedistill import atomic
from edgedistill.export._quiet import converter_output
from edgedistill.export._registry import EXPORTERS, refuse_unwritten_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.validate import Reference, Validation, compare_predictions, onnx_predictions
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)
OPSET = 18


@EXPORTERS.register("onnx")
class OnnxExporter:
    name = "onnx"
    runs_on = "onnxruntime"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = ".onnx"
    precisions = ("fp32",)
    consumes = None
    compiles_for_runtime = None
    hub = True
    extra = None
    modules = ("onnx", "onnxruntime")
    tools = ()
    validated_on = "host: onnxruntime (CPU)"

    def check(self, precision: str, context: ExportContext) -> str | None:
        return None

    def export(
        self,
        student,
        example,
        out: Path,
        precision: str = "fp32",
        context: ExportContext | None = None,
    ) -> Artifact:
        import torch

        refuse_unwritten_precision(self, precision)
        student = student.eval()
        for noisy in ("torch.onnx", "onnxscript", "onnx_ir"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        with atomic.replacing(out) as temporary, converter_output("torch.onnx"):
            torch.onnx.export(
                student,
                (example,),
                str(temporary),
                input_names=["input"],
                output_names=["logits"],
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        return Artifact.written(self.name, precision, out, example.shape)

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        import onnxruntime as ort

        return compare_predictions(
            lambda x: onnx_predictions(Path(artifact.path), x),
            reference,
            f"onnxruntime {ort.__version__} CPUExecutionProvider",
        )
