"""Turn a converter's failure into a refusal that names the layer, and try a chain before training.

Converters report the op they cannot lower ("Lowering not found: aten.erfinv.default",
"Unsupported fx node median"); the layer that op comes from is found in the torch.export graph
of the same module. `preflight` converts an untrained copy of the chosen architecture to every
format the chain builds here, so an export that cannot work is refused before any training.
At int8 the copy is prepared (quant.prepare: a layer with no int8 kernel is refused by name)
and calibrated on a seeded random batch first, and each int8 artifact must pass its format's
structural checks (a full-integer TFLite holds no float op).
"""

from __future__ import annotations

import copy
import logging
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import EdgeDistillError, UserInputError
from edgedistill.export._registry import EXPORTERS, artifact_precision
from edgedistill.export.validate import Reference
from edgedistill.inputs import random_input
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.quant.fake import current_mode, float_model, is_quantized
from edgedistill.quant.prepare import calibrate, prepare
from edgedistill.quant.scheme import QuantScheme

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.export.context import ExportContext

log = logging.getLogger(__name__)
CALIBRATION_SAMPLES = 8  # the seeded random batch an int8 preflight calibrates on
CHECK_SAMPLES = 2  # inputs an int8 artifact's structural check runs
_OP_PATTERNS = (
    re.compile(r"Lowering not found: aten\.(\w+)"),  # litert-torch
    re.compile(r"No ONNX function found for <OpOverload\(op='\w+\.(\w+)'"),  # torch.onnx
    re.compile(r"Unsupported fx node (\w+)"),  # coremltools
    re.compile(r"\bnode (\w+) \(\w+\) got"),  # coremltools, wrong arity
    re.compile(r"aten[.:]+(\w+)"),  # anything else naming an aten op
)


def failed_op(error: BaseException) -> str | None:
    """The op a converter error names, without overload or leading underscores."""
    text = str(error)
    for pattern in _OP_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).lstrip("_")
    return None


def layer_using(op: str, module: nn.Module, example: torch.Tensor) -> str | None:
    """`path (Type)` of the innermost module whose forward calls an aten op named like `op`."""
    import torch

    try:
        program = torch.export.export(module.eval(), (example,))
    except Exception:  # the module does not even trace; the caller reports the raw error
        return None
    wanted = op.replace("_", "")  # erf_inv after decomposition, special_erfinv before it
    for node in program.graph.nodes:
        if node.op != "call_function" or wanted not in str(node.target).replace("_", ""):
            continue
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return f"forward of the top-level {type(module).__name__}"
        path, kind = list(stack.values())[-1]
        kind_name = getattr(kind, "__name__", str(kind)).rsplit(".", 1)[-1]
        return f"`{path or '(top level)'}` ({kind_name})"
    return None


def explain_failure(
    error: BaseException, format_name: str, module: nn.Module, example: torch.Tensor
) -> UserInputError:
    """A refusal naming the layer and op the `format_name` converter could not handle."""

    op = failed_op(error)
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    if format_name in EXPORTERS and EXPORTERS.get(format_name).hub:
        remedy = f"{format_name} is the hub every chain starts from, so change the model"
    else:
        remedy = f"drop {format_name} from --formats or change the model"
    if op is None:
        return UserInputError(
            f"{format_name}: the export failed ({type(error).__name__}: {first_line}); {remedy}"
        )
    layer = layer_using(op, module, example)
    where = f"layer {layer} uses" if layer else "the model uses"
    return UserInputError(
        f"{format_name}: {where} the op {op}, which the {format_name} converter cannot "
        f"convert ({first_line}); {remedy}"
    )


def preflight(
    formats: list[str],
    precision: str,
    module: nn.Module,
    example: torch.Tensor,
    context: ExportContext,
    progress: ProgressFn = no_progress,
    scheme: QuantScheme | None = None,
) -> None:
    """Convert `module` (its weights do not matter) to every format of a planned chain.

    int8: `module` is the float student; it is prepared with `scheme` (default QuantScheme())
    and calibrated here, unless it is already a prepared model."""

    reference = None
    if precision == "int8":
        module = calibrated_copy(module, example, scheme or QuantScheme())
        reference = Reference.from_random(module, tuple(example.shape[1:]), CHECK_SAMPLES)
    upstream: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgedistill-preflight-") as scratch:
        for index, name in enumerate(formats):
            progress("preflight", index, len(formats), name)
            exporter = EXPORTERS.get(name)
            step_precision = artifact_precision(exporter, precision) or precision
            out = Path(scratch) / f"model.{step_precision}{exporter.suffix}"
            try:
                upstream[name] = exporter.export(
                    module, example, out, step_precision, replace(context, upstream=dict(upstream))
                )
            except EdgeDistillError:
                raise
            except Exception as exc:
                raise explain_failure(exc, name, module, example) from None
            if reference is not None and step_precision == "int8":
                _check_structure(name, upstream[name], reference)
            log.debug("preflight: %s %s converts", name, step_precision)
    progress("preflight", len(formats), len(formats), "done")


def calibrated_copy(module: nn.Module, example: torch.Tensor, scheme: QuantScheme) -> nn.Module:
    """`module` prepared for int8 (UserInputError naming any layer with no int8 kernel) and
    calibrated on seeded random inputs shaped like `example` (token ids over a text student's
    vocabulary); a calibrated one is reused, an uncalibrated prepared one copied first (its own
    calibration data is still to come)."""
    import torch

    if is_quantized(module) and current_mode(module) != "observe":
        return module
    prepared = copy.deepcopy(module) if is_quantized(module) else prepare(module, scheme)
    generator = torch.Generator().manual_seed(0)
    vocab_size = getattr(float_model(prepared), "vocab_size", None)
    batch = random_input(tuple(example.shape[1:]), CALIBRATION_SAMPLES, generator, vocab_size)
    calibrate(prepared, [batch])
    return prepared


def _check_structure(name: str, artifact, reference: Reference) -> None:
    """Refuse an int8 artifact whose structure is wrong (a float op in a full-integer
    TFLite); its figures are not judged here, the weights are untrained."""
    problems = EXPORTERS.get(name).validate(artifact, reference).problems
    if problems:
        raise UserInputError(
            f"{name} int8: the converted model is not what the target runs "
            f"({'; '.join(problems[:5])}); drop {name} from --formats or change the model"
        )
