"""TFLite (LiteRT) export with litert-torch, fp32 or fp16 weights; run with the LiteRT interpreter.

fp16 is LiteRT's "float16 quantization": weights stored as fp16 and dequantized at load, so
the file is about half the size and a GPU / NPU delegate can compute in fp16; the CPU (XNNPACK)
computes in fp32. The model keeps the student's NCHW float32 input and float32 logits.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from edgedistill import atomic
from edgedistill.export._extras import import_extra, require
from edgedistill.export._quiet import converter_output
from edgedistill.export._registry import EXPORTERS, refuse_unwritten_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.validate import Reference, Validation, compare_predictions
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)
EXTRA = "tflite"
_QUIET_ENV = {"LITERT_TORCH_SHOW_PROGRESS": "n", "TF_CPP_MIN_LOG_LEVEL": "2"}


@EXPORTERS.register("tflite")
class TfliteExporter:
    name = "tflite"
    runs_on = "tflite"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = ".tflite"
    precisions = ("fp32", "fp16")
    consumes = None
    compiles_for_runtime = None
    hub = False
    extra = EXTRA
    modules = ("litert_torch", "ai_edge_litert")
    tools = ()
    validated_on = "host: LiteRT interpreter (ai-edge-litert, XNNPACK)"

    def check(self, precision: str, context: ExportContext) -> str | None:
        require(self.modules, EXTRA, "TFLite export")
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
        with converter_output("litert-torch", _QUIET_ENV):
            litert_torch = import_extra("litert_torch", EXTRA, "TFLite export")
            quant_config = None
            if precision == "fp16":
                from litert_torch.generative.quantize import quant_recipes

                quant_config = quant_recipes.full_fp16_recipe()
            edge_model = litert_torch.convert(student.eval(), (example,), quant_config=quant_config)
            with atomic.replacing(out) as temporary:
                edge_model.export(str(temporary))
        return Artifact.written(self.name, precision, out, example.shape)

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        runner = TfliteRunner(Path(artifact.path))
        validation = compare_predictions(runner.predict, reference, runner.runtime)
        problems = tuple(runner.weight_precision_problems(artifact.precision))
        if problems:
            return replace(validation, problems=problems)
        return validation


class TfliteRunner:
    """A LiteRT interpreter on one .tflite file, fed one sample at a time (batch 1)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        with converter_output("ai-edge-litert", _QUIET_ENV):
            interpreter_module = import_extra(
                "ai_edge_litert.interpreter", EXTRA, "running TFLite models"
            )
            self.interpreter = interpreter_module.Interpreter(
                model_path=str(path), num_threads=threads
            )
            self.interpreter.allocate_tensors()
        (self._input,) = self.interpreter.get_input_details()
        (self._output,) = self.interpreter.get_output_details()
        from importlib.metadata import version

        self.runtime = (
            f"ai-edge-litert {version('ai-edge-litert')} interpreter (XNNPACK, {threads} thread)"
        )

    def predict(self, batch):
        import numpy as np

        outputs = []
        for index in range(len(batch)):
            sample = np.ascontiguousarray(batch[index : index + 1], dtype=self._input["dtype"])
            self.interpreter.set_tensor(self._input["index"], sample)
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_tensor(self._output["index"]).copy())
        return np.concatenate(outputs)

    def weight_precision_problems(self, precision: str) -> list[str]:
        """fp16 files must hold fp16 weights, fp32 files none."""
        import numpy as np

        dtypes = {detail["dtype"] for detail in self.interpreter.get_tensor_details()}
        has_fp16 = np.float16 in dtypes
        if precision == "fp16" and not has_fp16:
            return ["declared fp16 but holds no fp16 weights"]
        if precision == "fp32" and has_fp16:
            return ["declared fp32 but holds fp16 tensors"]
        return []
