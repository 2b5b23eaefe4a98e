"""What `edgedistill export` exports: a checkpoint `fit` or `distill` wrote, or a user's module.

A checkpoint is a folder with student.json (spec, input shape, classes) and student.safetensors
(or a run directory holding checkpoint/). A user's own `nn.Module` is named `FILE.py:FN` (FN
builds it, called without arguments) with its weights in a .safetensors file, or a state dict
saved with torch.save (read with weights_only=True, so it cannot run code).

A quantized checkpoint (`fit --precision int8` writes one: student.json names its scheme under
`quant`) is rebuilt as the fake-quantized student, calibrated scales included, and exports at
int8 only; a float checkpoint or module cannot become int8 here (that needs calibration data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.quant.checkpoint import checkpoint_scheme, load_quantized
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import build_student, parse_student
from edgedistill.students.checkpoint import (
    META_FILE,
    WEIGHTS_FILE,
    checkpoint_folder,
    read_checkpoint,
)
from edgedistill.tasks.user_code import build_module, load_callable
from edgedistill.weights import apply_state_dict, load_state_dict

if TYPE_CHECKING:
    from torch import nn

_USER_CODE = re.compile(r"^(?P<file>.+\.py):(?P<fn>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class ExportSource:
    module: nn.Module
    input_shape: tuple[int, ...]  # C x H x W
    description: str
    task: str | None = None  # the task a checkpoint was trained on, as it names it
    scheme: QuantScheme | None = None  # a quantized checkpoint's: `module` is fake-quantized


def load_source(
    checkpoint: str, weights: Path | None = None, input_shape: str | None = None
) -> ExportSource:
    """The module to export, ready in eval mode. Errors name the argument or file."""
    match = _USER_CODE.match(checkpoint)
    if match:
        return _user_module(Path(match["file"]), match["fn"], weights, input_shape)
    if weights is not None:
        raise UserInputError("--weights: only for a FILE.py:FN module (a checkpoint has its own)")
    return _checkpoint(Path(checkpoint), input_shape)


def source_scheme(checkpoint: str) -> QuantScheme | None:
    """The quantization scheme of the checkpoint `checkpoint` names (None: a float checkpoint
    or a FILE.py:FN module), read from its student.json without loading any weights; a path
    that is no checkpoint gives None here and its refusal from load_source."""
    if _USER_CODE.match(checkpoint) or checkpoint_folder(Path(checkpoint)) is None:
        return None
    return checkpoint_scheme(read_checkpoint(Path(checkpoint), "CHECKPOINT"))


def parse_shape(text: str, flag: str = "--input-shape") -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserInputError(f"{flag} {text!r}: expected C,H,W, e.g. 3,224,224")
    return shape


def _checkpoint(path: Path, input_shape: str | None) -> ExportSource:
    if not path.exists():
        raise UserInputError(f"CHECKPOINT {path}: no such file or directory")
    if checkpoint_folder(path) is None:
        raise UserInputError(
            f"CHECKPOINT {path}: expected student.json and student.safetensors there (or in "
            "its checkpoint/ folder), as `fit` and `distill` write them; for your own module "
            "give FILE.py:FN --weights FILE"
        )
    checkpoint = read_checkpoint(path, "CHECKPOINT")
    shape, classes = checkpoint.input_shape, checkpoint.num_classes
    if shape is None or not isinstance(classes, int):
        raise UserInputError(
            f"{checkpoint.folder / META_FILE}: not a student checkpoint description "
            "(fields input_shape and num_classes)"
        )
    if input_shape is not None and parse_shape(input_shape) != tuple(shape):
        raise UserInputError(
            f"--input-shape {input_shape}: the checkpoint was trained on {list(shape)}; "
            "leave it out"
        )
    parse_student(checkpoint.candidate.spec, f"{checkpoint.folder / META_FILE} field spec")
    description = f"checkpoint {checkpoint.folder} ({checkpoint.candidate.spec})"
    task = checkpoint.meta.get("task")
    scheme = checkpoint_scheme(checkpoint)
    if scheme is not None:
        module = load_quantized(checkpoint, tuple(shape), classes, "CHECKPOINT")
        description += f", quantized {scheme.name}"
        return ExportSource(module, tuple(shape), description, task, scheme)
    module = build_student(checkpoint.candidate, tuple(shape), classes)
    weights = checkpoint.folder / WEIGHTS_FILE
    apply_state_dict(module, load_state_dict(weights, "CHECKPOINT"), weights, "CHECKPOINT")
    return ExportSource(module.eval(), tuple(shape), description, task)


def _user_module(
    file: Path, function: str, weights: Path | None, input_shape: str | None
) -> ExportSource:

    if input_shape is None:
        raise UserInputError("--input-shape: needed for a FILE.py:FN module, e.g. 3,224,224")
    shape = parse_shape(input_shape)
    build = load_callable(f"{file}:{function}", "CHECKPOINT")
    module = build_module(build, "CHECKPOINT", f"{file}:{function}")
    if weights is None:
        raise UserInputError(
            f"--weights: needed for {file}:{function} (.safetensors, or a torch.save'd state "
            "dict); exporting untrained weights is never what you want"
        )
    apply_state_dict(module, load_state_dict(weights, "--weights"), weights, "--weights")
    _check_runs(module.eval(), shape, input_shape)
    return ExportSource(module, shape, f"{file}:{function} with {weights.name}")


def _check_runs(module: nn.Module, shape: tuple[int, ...], flag_value: str) -> None:
    """The module must take one 1 x C x H x W float tensor and return N x classes logits."""
    import torch

    try:
        with torch.no_grad():
            logits = module(torch.zeros((1, *shape)))
    except Exception as exc:
        raise UserInputError(
            f"--input-shape {flag_value}: the module fails on a 1x{'x'.join(map(str, shape))} "
            f"input ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != 1:
        raise UserInputError(
            "CHECKPOINT: the module must return one tensor of logits, batch x classes"
        )
