"""Student checkpoints: weights as safetensors beside a JSON file with the spec to rebuild them.

The one reader and writer of `student.json` + `student.safetensors`, whoever wrote them:
`fit` (run/checkpoint/), `distill` (its --out folder and each stage's folder); read back by
`export` and by distillation runs that take an earlier run as a teacher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill import atomic
from edgedistill.errors import UserInputError
from edgedistill.students import build_student
from edgedistill.students.candidate import Candidate
from edgedistill.weights import load_safetensors, save_safetensors

if TYPE_CHECKING:
    from torch import nn

META_FILE = "student.json"
WEIGHTS_FILE = "student.safetensors"


@dataclass
class Checkpoint:
    folder: Path
    candidate: Candidate
    meta: dict[str, Any]

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        shape = self.meta.get("input_shape")
        return tuple(shape) if shape else None  # type: ignore[return-value]

    @property
    def num_classes(self) -> int | None:
        return self.meta.get("num_classes")


def save_weights(folder: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """folder/student.safetensors, then folder/student.json (the file that marks it complete)."""
    save_safetensors(folder / WEIGHTS_FILE, model)
    atomic.write_json(folder / META_FILE, meta)


def load_weights(folder: Path, model: nn.Module, what: str = "checkpoint") -> nn.Module:
    """folder/student.safetensors into `model`; an unreadable or malformed file is bad input
    naming it (`what` first), since a checkpoint folder may come from anyone."""
    model.load_state_dict(load_safetensors(folder / WEIGHTS_FILE, what))
    return model


# Where a fit run keeps its students: the int8 one first (what an int8 run ships), then fp32.
QUANTIZED_FOLDER = "quantized"
RUN_FOLDERS = (QUANTIZED_FOLDER, "checkpoint")


def checkpoint_folder(path: Path) -> Path | None:
    """The folder holding student.json + student.safetensors at `path`, or in a fit run's
    quantized/ (int8 runs) or checkpoint/ folder."""
    for folder in (path, *(path / name for name in RUN_FOLDERS)):
        if (folder / META_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
            return folder
    return None


def read_checkpoint(path: Path, what: str) -> Checkpoint:
    """The checkpoint at `path`; `what` (a flag or argument) starts every message."""
    folder = checkpoint_folder(path)
    if folder is None:
        raise UserInputError(
            f"{what} {path}: expected a folder with {META_FILE} and {WEIGHTS_FILE} (written by "
            "`edgedistill distill --out` or a fit run's checkpoint/)"
        )
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{what} {folder / META_FILE}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("spec"), str):
        raise UserInputError(f"{what} {folder / META_FILE}: field spec: missing")
    return Checkpoint(folder, Candidate.parse(meta["spec"], f"{folder / META_FILE}"), meta)


def load_student(checkpoint: Checkpoint, input_shape, num_classes: int, what: str) -> nn.Module:
    """The trained student module of a checkpoint, in eval mode."""
    model = build_student(checkpoint.candidate, tuple(input_shape), num_classes)
    return load_checked(checkpoint, model, what).eval()


def load_checked(checkpoint: Checkpoint, model: nn.Module, what: str) -> nn.Module:
    """The checkpoint's weights loaded into `model`; a mismatch is bad input naming it."""
    try:
        return load_weights(checkpoint.folder, model, what)
    except RuntimeError as exc:
        raise UserInputError(
            f"{what} {checkpoint.folder}: weights do not match the spec ({exc})"
        ) from None
