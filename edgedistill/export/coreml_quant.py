"""Core ML int8 / int4 weights and int8 activations from a prepared, calibrated student.

int8, by the minimum deployment target:
  iOS17+  W8A8. The student in `export` mode (quant.fake) converts as it is: coremltools turns
          each int8 weight with its per-channel scales into a constexpr dequantize op, and each
          activation quantize / dequantize pair into MIL quantize / dequantize ops, all with our
          scales (calibration and QAT), stored as fp16 like the rest of the program.
  iOS16   W8A16, weights only: MIL has no activation quantize op before iOS17. The student in
          `weights` mode (float weights on the int8 grid, activations not quantized) converts to
          an fp16 program, and linear_quantize_weights (linear_symmetric, per output channel)
          stores the weights as int8: our int8 values exactly, our scales max|w|/127 to fp16
          rounding.
int4 (iOS18+), W4A16: the same float program, weights quantized by coremltools to int4 per block
  of BLOCK_SIZE input channels (per output channel where the input channels do not divide into
  blocks). Its scales are coremltools' own: QAT ran at int8, so int4 is post-training.

coremltools' own activation calibration (optimize.coreml.experimental.linear_quantize_activations)
runs Core ML predictions, which need macOS; the route above needs none and keeps our ranges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedistill.export._quiet import converter_output

INT8_SPEC = 7  # iOS16 / macOS13: constexpr (compressed) weights
ACTIVATIONS_SPEC = 8  # iOS17 / macOS14: MIL quantize / dequantize ops on activations
INT4_SPEC = 9  # iOS18 / macOS15: int4 and per-block scales
BLOCK_SIZE = 32  # input channels that share one int4 scale
# coremltools keeps constants of fewer values inline and never compresses them.
SMALLEST_COMPRESSED = 10
STORED_AS = {"fp32": "FLOAT32", "fp16": "FLOAT16", "int8": "INT8", "int4": "INT4"}


@dataclass(frozen=True)
class Recipe:
    """How a quantized student becomes a Core ML program at one precision and target."""

    precision: str  # int8 or int4
    label: str  # W8A8, W8A16, W4A16: weight and activation bits
    torch_mode: str  # the quant.fake mode the student converts in
    compress: str | None  # what linear_quantize_weights writes after conversion, if anything
    notes: tuple[str, ...]


def recipe_for(precision: str, spec_version: int, tokens: bool = False) -> Recipe:
    """The recipe for `precision` on a target reading `spec_version` (already checked);
    `tokens`: the student reads token ids (a text student)."""
    if precision == "int4":
        return Recipe(
            "int4",
            "W4A16",
            "weights",
            "int4",
            (
                f"int4 weights (W4A16), symmetric, per block of {BLOCK_SIZE} input channels "
                "(per output channel where they do not divide), scales chosen by coremltools "
                "from the int8-trained weights; activations fp16",
            ),
        )
    if spec_version >= ACTIVATIONS_SPEC:
        # A text student's embedding tables are float in the int8 student (quant/encoder_plan):
        # coremltools stores them int8 (weights only), as the W8A16 route does every weight.
        tables = (
            "the token and position embedding tables: int8 per row, weights only, scales "
            "chosen by coremltools (the linear layers' are edgedistill's)",
        )
        return Recipe(
            "int8",
            "W8A8",
            "export",
            "int8" if tokens else None,
            (
                "int8 weights and activations (W8A8): per-channel int8 weights and per-tensor "
                "int8 activations with the scales of edgedistill's calibration and QAT, as MIL "
                "quantize / dequantize ops; the Neural Engine of A17 Pro / M4 and later has "
                "int8-int8 compute",
                "coremltools' own activation calibration (linear_quantize_activations) needs "
                "Core ML predictions (macOS) and was not used",
                *(tables if tokens else ()),
            ),
        )
    return Recipe(
        "int8",
        "W8A16",
        "weights",
        "int8",
        (
            "int8 weights only (W8A16): per-channel int8 weights, activations fp16; int8 "
            "activations need a minimum deployment target of iOS17 / macOS14 or newer",
        ),
    )


def compress_weights(ct, mlmodel, recipe: Recipe):
    """`mlmodel` with its conv / linear weights stored as `recipe.compress` (or as it is)."""
    if recipe.compress is None:
        return mlmodel
    cto = ct.optimize.coreml
    if recipe.compress == "int8":
        config = cto.OptimizationConfig(global_config=_linear_config(cto, "int8", "per_channel"))
    else:
        config = cto.OptimizationConfig(op_name_configs=_int4_configs(cto, mlmodel))
    with converter_output("coremltools"):
        return cto.linear_quantize_weights(mlmodel, config)


def _linear_config(cto, dtype: str, granularity: str):
    return cto.OpLinearQuantizerConfig(
        mode="linear_symmetric",
        dtype=dtype,
        granularity=granularity,
        block_size=BLOCK_SIZE if granularity == "per_block" else None,
        weight_threshold=0,  # every weight; coremltools still keeps tiny ones inline
    )


def _int4_configs(cto, mlmodel) -> dict[str, Any]:
    """Per conv / linear op: int4 per block where its input channels divide into blocks,
    per output channel where they do not (a depthwise 3x3 has one input channel per group)."""
    per_block = _linear_config(cto, "int4", "per_block")
    per_channel = _linear_config(cto, "int4", "per_channel")
    configs = {}
    # The MIL program a converted model keeps: coremltools' compression passes read it too.
    for function in mlmodel._mil_program.functions.values():
        for op in function.operations:
            if op.op_type in ("conv", "linear") and op.weight.val is not None:
                channels = op.weight.shape[1]
                configs[op.name] = per_block if channels % BLOCK_SIZE == 0 else per_channel
    return configs


@dataclass(frozen=True)
class StoredWeight:
    """One weight of a Core ML program (a tensor of rank >= 2) as the package stores it."""

    name: str
    dtype: str  # FLOAT16, FLOAT32, or the integer type a constexpr op dequantizes: INT8, INT4
    size: int  # values


def stored_weights(spec) -> list[StoredWeight]:
    """Every weight of the program, read from its specification alone: plain constants of
    rank >= 2 (conv and linear weights), and the data of constexpr dequantize ops. Constants
    that only feed a constexpr op (its data or scales) are part of that weight."""
    from coremltools.proto import MIL_pb2

    found = []
    for operations in _blocks(spec):
        consts = {op.outputs[0].name: op for op in operations if op.type == "const"}
        fed_to_constexpr = {
            argument.name
            for op in operations
            if op.type.startswith("constexpr_")
            for binding in op.inputs.values()
            for argument in binding.arguments
        }
        for op in operations:
            if op.type == "const" and op.outputs[0].name not in fed_to_constexpr:
                tensor = op.outputs[0].type.tensorType
                if op.outputs[0].type.WhichOneof("type") == "tensorType" and tensor.rank >= 2:
                    found.append(
                        StoredWeight(
                            op.outputs[0].name,
                            MIL_pb2.DataType.Name(tensor.dataType),
                            _size(tensor),
                        )
                    )
            elif op.type.startswith("constexpr_"):
                data = _constexpr_data_type(op, consts)
                dtype = MIL_pb2.DataType.Name(data.dataType) if data is not None else op.type
                found.append(
                    StoredWeight(op.outputs[0].name, dtype, _size(op.outputs[0].type.tensorType))
                )
    return found


def quantize_op_count(spec) -> int:
    """Activation quantize ops of the program (W8A8 has one per quantized activation)."""
    return sum(op.type == "quantize" for operations in _blocks(spec) for op in operations)


def _blocks(spec) -> Iterator[Any]:
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            yield block.operations


def _size(tensor) -> int:
    size = 1
    for dimension in tensor.dimensions:
        size *= dimension.constant.size
    return size


def _constexpr_data_type(op, consts):
    """The tensor type of the integer data a constexpr op dequantizes (None: not one of ours)."""
    if op.type == "constexpr_affine_dequantize":  # iOS16 / iOS17: attributes
        value = op.attributes.get("quantized_data")
        return value.type.tensorType if value is not None else None
    if op.type == "constexpr_blockwise_shift_scale" and "data" in op.inputs:  # iOS18: inputs
        (argument,) = op.inputs["data"].arguments
        if argument.WhichOneof("binding") == "value":
            return argument.value.type.tensorType
        const = consts.get(argument.name)
        return const.outputs[0].type.tensorType if const is not None else None
    return None


def weight_problems(spec, precision: str, label: str | None = None) -> list[str]:
    """What a package declared `precision` lacks: every weight stored at that precision (for
    int8 / int4, tiny ones that coremltools never compresses aside), and quantize ops where
    `label` (its metadata `quantization`) declares int8 activations."""
    wanted = STORED_AS[precision]
    smallest = SMALLEST_COMPRESSED if precision in ("int8", "int4") else 0
    weights = stored_weights(spec)
    others = sorted({w.dtype for w in weights if w.dtype != wanted and w.size >= smallest})
    problems = []
    if not weights:
        problems.append("the program holds no weights")
    elif others:
        problems.append(f"{precision} model holds {', '.join(others)} weights")
    if label is not None and label.endswith("A8") and quantize_op_count(spec) == 0:
        problems.append(f"declared {label} (int8 activations) but the program quantizes none")
    return problems


def read_program(package: Path):
    """The MIL program of a saved .mlpackage, weights included (coremltools' own loader)."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    with converter_output("coremltools"):
        model = ct.models.MLModel(str(package), skip_model_load=True)
        spec = model.get_spec()
        return load(spec, spec.specificationVersion, file_weights_dir=model.weights_dir)


def read_quantized_weights(package: Path) -> list[tuple[str, Any, Any]]:
    """(name, integer data, scales) of every constexpr-dequantized weight of a saved
    .mlpackage, in program order."""
    found = []
    for function in read_program(package).functions.values():
        for op in function.operations:
            if op.op_type == "constexpr_affine_dequantize":
                found.append((op.outputs[0].name, op.quantized_data.val, op.scale.val))
            elif op.op_type == "constexpr_blockwise_shift_scale":
                found.append((op.outputs[0].name, op.data.val, op.scale.val))
    return found
