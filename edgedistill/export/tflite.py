"""TFLite (LiteRT) export with litert-torch: fp32, fp16 or full-integer int8; run with LiteRT.

fp16 is LiteRT's "float16 quantization": weights stored as fp16 and dequantized at load, so
the file is about half the size and a GPU / NPU delegate can compute in fp16; the CPU (XNNPACK)
computes in fp32. fp32 and fp16 keep the student's NCHW float32 input and float32 logits.

int8 is full-integer quantization for image students (what the Edge TPU and integer-only NPUs
need): int8 input, int8 logits and int8 kernels throughout, from the fake-quantized student
(quant.prepare) with the scales it learned in calibration and QAT. A text student's int8 file
(quant/encoder_plan.py) has int8 fully connected layers, int32 token ids as input and the
embeddings, LayerNorm and softmax in float. litert-torch lowers its quantize / dequantize
pairs (weights as float values on the int8 grid) to int8 TFLite kernels; the PT2E quantizer
handed to it only switches the converter to static Q/DQ lowering, it computes no scales. The
caller quantizes inputs with the input tensor's (scale, zero point) and dequantizes the logits
with the output's; both are in the file and in the artifact's notes.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgedistill import atomic
from edgedistill.export._extras import import_extra, require
from edgedistill.export._quiet import converter_output
from edgedistill.export._registry import EXPORTERS, HostRunner, refuse_unwritten_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.validate import Reference, Validation, compare_predictions
from edgedistill.inputs import as_array
from edgedistill.quant.fake import exporting, is_quantized
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)
EXTRA = "tflite"
_QUIET_ENV = {"LITERT_TORCH_SHOW_PROGRESS": "n", "TF_CPP_MIN_LOG_LEVEL": "2"}
_INTEGER_CONSTANTS = ("int32",)  # biases, shapes, axes: constants an int8 kernel reads


@EXPORTERS.register("tflite")
class TfliteExporter:
    name = "tflite"
    runs_on = "tflite"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = ".tflite"
    precisions = ("fp32", "fp16", "int8")
    consumes = None
    compiles_for_runtime = None
    hub = False
    extra = EXTRA
    modules = ("litert_torch", "ai_edge_litert")
    tools = ()
    validated_on = "host: LiteRT interpreter (ai-edge-litert, XNNPACK); int8: integer-only ops"

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
        if (precision == "int8") != is_quantized(student):
            raise ValueError(
                "an int8 TFLite export takes the prepared, calibrated student (quant.prepare); "
                "fp32 and fp16 take the float student"
            )
        with converter_output("litert-torch", _QUIET_ENV):
            litert_torch = import_extra("litert_torch", EXTRA, "TFLite export")
            if precision == "int8":
                with exporting(student, int8_weights=False) as frozen:
                    edge_model = litert_torch.convert(
                        frozen, (example,), quant_config=_static_int8_config()
                    )
            else:
                quant_config = None
                if precision == "fp16":
                    from litert_torch.generative.quantize import quant_recipes

                    quant_config = quant_recipes.full_fp16_recipe()
                edge_model = litert_torch.convert(
                    student.eval(), (example,), quant_config=quant_config
                )
            with atomic.replacing(out) as temporary:
                edge_model.export(str(temporary))
        if precision != "int8":
            return Artifact.written(self.name, precision, out, example.shape)
        runner = TfliteRunner(out)
        return Artifact.written(
            self.name,
            precision,
            out,
            example.shape,
            notes=[runner.integer_io_note()],
            io_quantization=runner.io_quantization(),
        )

    def host_runner(self, path: Path) -> HostRunner:
        runner = TfliteRunner(path)
        return HostRunner(runner.predict, runner.runtime)

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        runner = TfliteRunner(Path(artifact.path))
        validation = compare_predictions(runner.predict, reference, runner.runtime)
        if artifact.precision == "int8" and runner.takes_token_ids:
            problems = runner.int8_linear_problems()
        elif artifact.precision == "int8":
            problems = runner.integer_only_problems()
        else:
            problems = runner.weight_precision_problems(artifact.precision)
        if problems:
            return replace(validation, problems=(*validation.problems, *problems))
        return validation


def _static_int8_config():
    """litert-torch's switch to static int8 Q/DQ lowering (the scales come from the model)."""
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )
    from litert_torch.quantize.quant_config import QuantConfig

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    return QuantConfig(pt2e_quantizer=quantizer)


class TfliteRunner:
    """A LiteRT interpreter on one .tflite file, fed one sample at a time (batch 1).

    Takes and returns float arrays whatever the file holds: an int8 model's inputs are
    quantized with its input tensor's (scale, zero point) and its outputs dequantized."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.path = path
        with converter_output("ai-edge-litert", _QUIET_ENV):
            self._module = import_extra(
                "ai_edge_litert.interpreter", EXTRA, "running TFLite models"
            )
            self.interpreter = self._module.Interpreter(model_path=str(path), num_threads=threads)
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
            sample = self._to_input(as_array(batch[index : index + 1]))
            self.interpreter.set_tensor(self._input["index"], sample)
            self.interpreter.invoke()
            outputs.append(self._from_output(self.interpreter.get_tensor(self._output["index"])))
        return np.concatenate(outputs)

    def _to_input(self, sample):
        import numpy as np

        dtype = self._input["dtype"]
        scale, zero_point = self._input["quantization"]
        if not np.issubdtype(dtype, np.integer) or scale == 0:  # floats, or token ids
            return np.ascontiguousarray(sample, dtype=dtype)
        limits = np.iinfo(dtype)
        levels = np.round(sample / np.float32(scale)) + zero_point
        return np.ascontiguousarray(np.clip(levels, limits.min, limits.max).astype(dtype))

    def _from_output(self, values):
        import numpy as np

        if not np.issubdtype(self._output["dtype"], np.integer):
            return values.astype(np.float32)
        scale, zero_point = self._output["quantization"]
        return ((values.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)

    def io_quantization(self) -> dict[str, dict[str, Any]]:
        """dtype, scale and zero point of the input and output tensors."""
        return {
            name: {
                "dtype": str(detail["dtype"].__name__),
                "scale": float(detail["quantization"][0]),
                "zero_point": int(detail["quantization"][1]),
            }
            for name, detail in (("input", self._input), ("output", self._output))
        }

    @property
    def takes_token_ids(self) -> bool:
        """An integer input with no quantization: token ids (a text student), fed as they are."""
        import numpy as np

        return (
            np.issubdtype(self._input["dtype"], np.integer) and not self._input["quantization"][0]
        )

    def integer_io_note(self) -> str:
        """How a caller feeds the int8 model and reads its logits, in one line."""
        (in_scale, in_zero), (out_scale, out_zero) = (
            self._input["quantization"],
            self._output["quantization"],
        )
        if self.takes_token_ids:
            fed = (
                f"int8 linear layers: {_dtype_name(self._input['dtype'])} token ids fed as they "
                "are; embeddings, LayerNorm and softmax in float"
            )
        else:
            fed = (
                f"full integer: int8 input (scale {in_scale:.6g}, zero point {in_zero}; feed "
                "round(x / scale) + zero point)"
            )
        if not out_scale:
            return f"{fed}; float32 outputs"
        return (
            f"{fed}; int8 outputs (scale {out_scale:.6g}, zero point {out_zero}; "
            "values = (q - zero point) * scale)"
        )

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

    def integer_only_problems(self) -> list[str]:
        """A full-integer file: int8 input and output, every op computing on int8 tensors
        (int32 only for constants such as biases and shapes), and the file prepares with
        TFLite's own int8 kernels, not only with XNNPACK (they enforce TFLite's int8 spec,
        e.g. a LOGISTIC output scale of 1/256; integer-only delegates need it too)."""
        problems = [
            f"the model {role} {detail['name']} is {_dtype_name(detail['dtype'])}, not int8"
            for role, detail in (("input", self._input), ("output", self._output))
            if _dtype_name(detail["dtype"]) != "int8"
        ]
        builtin = self._builtin_interpreter()
        for op in builtin._get_ops_details():
            found = _float_operands(op)
            if found:
                problems.append(f"op {op['index']} {op['op_name']} computes on {found}")
        try:
            builtin.allocate_tensors()
        except RuntimeError as exc:
            first_line = (str(exc).strip().splitlines() or ["failed"])[0][:300]
            problems.append(f"TFLite's built-in int8 kernels refuse the model: {first_line}")
        return problems

    def int8_linear_problems(self) -> list[str]:
        """A text student's int8 file: every FULLY_CONNECTED op with stored weights (a linear
        layer; the converter also writes a one-head attention matmul between activations as
        one) takes an int8 input and int8 weights, the rest may compute in float, and TFLite's
        own kernels prepare the file."""
        builtin = self._builtin_interpreter()
        ops = builtin._get_ops_details()
        computed = {index for op in ops for index in op["outputs"]}
        linear = [
            op
            for op in ops
            if op["op_name"] == "FULLY_CONNECTED" and op["inputs"][1] not in computed
        ]
        problems = [] if linear else ["no FULLY_CONNECTED op: the linear layers were not kept"]
        for op in linear:
            operands = [_dtype_name(dtype) for dtype in op["operand_types"][:2]]
            if operands != ["int8", "int8"]:
                problems.append(
                    f"op {op['index']} FULLY_CONNECTED takes {' and '.join(operands)} (input, "
                    "weights), not int8"
                )
        try:
            builtin.allocate_tensors()
        except RuntimeError as exc:
            first_line = (str(exc).strip().splitlines() or ["failed"])[0][:300]
            problems.append(f"TFLite's built-in kernels refuse the model: {first_line}")
        return problems

    def _builtin_interpreter(self) -> Any:
        """The same file with TFLite's built-in kernels only: no XNNPACK delegate folding the
        ops into one DELEGATE node, so every op of the file is listed as it is stored."""
        with converter_output("ai-edge-litert", _QUIET_ENV):
            return self._module.Interpreter(
                model_path=str(self.path),
                experimental_op_resolver_type=(
                    self._module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                ),
            )


def _dtype_name(dtype) -> str:
    import numpy as np

    return np.dtype(dtype).name


def _float_operands(op: dict[str, Any]) -> str:
    """What of an op is not integer: inputs other than int8 / int32 constants, outputs other
    than int8 ('' when the op is integer-only). int32 inputs are constants: an int32 result
    of another op is flagged where that op is."""
    inputs = [
        _dtype_name(dtype)
        for dtype in op["operand_types"]
        if _dtype_name(dtype) not in ("int8", *_INTEGER_CONSTANTS)
    ]
    outputs = [_dtype_name(d) for d in op["result_types"] if _dtype_name(d) != "int8"]
    parts = []
    if inputs:
        parts.append(f"{', '.join(sorted(set(inputs)))} inputs")
    if outputs:
        parts.append(f"{', '.join(sorted(set(outputs)))} outputs")
    return " and ".join(parts)
