"""ONNX export with torch.onnx's dynamo exporter: the hub format every other chain starts from.

int8: the fake-quantized student (quant.prepare) exports in QDQ form: int8 weights per channel
behind DequantizeLinear, a QuantizeLinear / DequantizeLinear pair on every activation, with the
scales learned in calibration and QAT; onnxruntime fuses them into int8 kernels, TensorRT reads
them as explicit quantization. Activations and weights are stored as uint8 for onnxruntime
unless the scheme is symmetric (onnx_qdq.py says why).
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgedistill import atomic
from edgedistill.export._quiet import converter_output
from edgedistill.export._registry import EXPORTERS, HostRunner, refuse_unwritten_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.onnx_qdq import to_unsigned
from edgedistill.export.validate import Reference, Validation, compare_predictions, onnx_predictions
from edgedistill.quant.fake import exporting, is_quantized, is_symmetric
from edgedistill.quant.prepare import plan_summary
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)
OPSET = 18


@EXPORTERS.register("onnx")
class OnnxExporter:
    name = "onnx"
    runs_on = "onnxruntime"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = ".onnx"
    precisions = ("fp32", "int8")
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
        refuse_unwritten_precision(self, precision)
        if precision == "int8":
            return self._export_int8(student, example, out)
        if is_quantized(student):
            raise ValueError("an fp32 ONNX export takes the float student, not a quantized one")
        self._write(student.eval(), example, out)
        return Artifact.written(self.name, precision, out, example.shape)

    def _export_int8(self, student, example, out: Path) -> Artifact:
        if not is_quantized(student):
            raise ValueError("int8 export takes a prepared, calibrated student (quant.prepare)")
        symmetric = is_symmetric(student)
        with exporting(student, int8_weights=True) as frozen:
            self._write(frozen, example, out)
        if not symmetric:
            to_unsigned(out)
        form = (
            "int8 per-channel weights, int8 symmetric activations"
            if symmetric
            else "uint8 per-channel weights (zero point 128), uint8 activations"
        )
        return Artifact.written(
            self.name,
            "int8",
            out,
            example.shape,
            notes=[f"QDQ: {form}", plan_summary(student)],
        )

    def _write(self, student, example, out: Path) -> None:
        import torch

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

    def host_runner(self, path: Path) -> HostRunner:
        import onnxruntime as ort

        return HostRunner(
            lambda x: onnx_predictions(path, x),
            f"onnxruntime {ort.__version__} CPUExecutionProvider",
        )

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        import onnxruntime as ort

        return compare_predictions(
            lambda x: onnx_predictions(Path(artifact.path), x),
            reference,
            f"onnxruntime {ort.__version__} CPUExecutionProvider",
        )
