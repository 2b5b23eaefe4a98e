"""What `edgedistill export` exports: a checkpoint `fit` or `distill` wrote, or a user's module.

A checkpoint is a folder with student.json (spec, input shape, classes) and student.safetensors
(or a run directory holding checkpoint/). A user's own `nn.Module` is named `FILE.py:FN` (FN
builds it, called without arguments) with its weights in a .safetensors file, or a state dict
saved with torch.save (read with weights_only=True, so it cannot run code).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.students import build_student, parse_student
from edgedistill.tasks.user_code import load_callable

if TYPE_CHECKING:
    from torch import nn

_USER_CODE = re.compile(r"^(?P<file>.+\.py):(?P<fn>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class ExportSource:
    module: nn.Module
    input_shape: tuple[int, ...]  # C x H x W
    description: str
    task: str | None = None  # the task a checkpoint was trained on, as it names it


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


def parse_shape(text: str, flag: str = "--input-shape") -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserInputError(f"{flag} {text!r}: expected C,H,W, e.g. 3,224,224")
    return shape


def _checkpoint(path: Path, input_shape: str | None) -> ExportSource:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = path / "checkpoint" if (path / "checkpoint" / "student.json").is_file() else path
    meta_path, weights_path = folder / "student.json", folder / "student.safetensors"
    if not path.exists():
        raise UserInputError(f"CHECKPOINT {path}: no such file or directory")
    if not meta_path.is_file() or not weights_path.is_file():
        raise UserInputError(
            f"CHECKPOINT {path}: expected student.json and student.safetensors there (or in "
            "its checkpoint/ folder), as `fit` and `distill` write them; for your own module "
            "give FILE.py:FN --weights FILE"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        spec, shape, classes = meta["spec"], meta["input_shape"], int(meta["num_classes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{meta_path}: not a student checkpoint description ({exc})") from None
    if input_shape is not None and parse_shape(input_shape) != tuple(shape):
        raise UserInputError(
            f"--input-shape {input_shape}: the checkpoint was trained on {shape}; leave it out"
        )
    module = build_student(parse_student(spec, f"{meta_path} field spec"), tuple(shape), classes)
    try:
        state = load_file(str(weights_path))
    except (OSError, SafetensorError) as exc:
        raise UserInputError(f"{weights_path}: cannot read safetensors ({exc})") from None
    _load_state(module, state, weights_path)
    description = f"checkpoint {folder} ({spec})"
    return ExportSource(module.eval(), tuple(shape), description, meta.get("task"))


def _user_module(
    file: Path, function: str, weights: Path | None, input_shape: str | None
) -> ExportSource:
    from torch import nn

    if input_shape is None:
        raise UserInputError("--input-shape: needed for a FILE.py:FN module, e.g. 3,224,224")
    shape = parse_shape(input_shape)
    build = load_callable(f"{file}:{function}", "CHECKPOINT")
    try:
        module = build()
    except Exception as exc:
        raise UserInputError(
            f"CHECKPOINT {file}:{function}: failed ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(module, nn.Module):
        raise UserInputError(
            f"CHECKPOINT {file}:{function}: returned {type(module).__name__}, not an nn.Module"
        )
    if weights is None:
        raise UserInputError(
            f"--weights: needed for {file}:{function} (.safetensors, or a torch.save'd state "
            "dict); exporting untrained weights is never what you want"
        )
    _load_state(module, _read_weights(weights), weights)
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


def _read_weights(path: Path) -> dict:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserInputError(f"--weights {path}: no such file")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise UserInputError(f"--weights {path}: cannot read safetensors ({exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused pickles land here: they could run code
        raise UserInputError(
            f"--weights {path}: not a plain state dict (read with weights_only=True, which "
            f"refuses pickled objects that could run code): {str(exc).splitlines()[0][:200]}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UserInputError(f"--weights {path}: expected a state dict (name -> tensor)")
    return state


def _load_state(module: nn.Module, state: dict, origin: Path) -> None:
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = str(exc).strip().splitlines()[-1][:300]
        raise UserInputError(f"{origin}: weights do not match the module ({detail})") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing {', '.join(result.missing_keys[:8])}")
    if result.unexpected_keys:
        problems.append(f"unexpected {', '.join(result.unexpected_keys[:8])}")
    if problems:
        raise UserInputError(f"{origin}: weights do not match the module ({'; '.join(problems)})")
