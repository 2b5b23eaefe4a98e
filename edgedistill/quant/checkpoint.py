"""Quantized student checkpoints: the fp32 checkpoint format plus the scheme that rebuilds the
fake-quantized model (student.json `quant`), so `export` and later runs read them back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.errors import UserInputError
from edgedistill.quant.fake import set_mode
from edgedistill.quant.prepare import prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.students import build_student
from edgedistill.students.checkpoint import Checkpoint, load_checked, save_weights

if TYPE_CHECKING:
    from torch import nn

QUANT_FIELD = "quant"


def save_quantized(folder: Path, model: nn.Module, scheme: QuantScheme, meta: dict[str, Any]):
    """folder/student.safetensors + student.json with the scheme under `quant`."""
    save_weights(folder, model, {**meta, "precision": "int8", QUANT_FIELD: scheme.to_dict()})


def checkpoint_scheme(checkpoint: Checkpoint) -> QuantScheme | None:
    """The scheme a checkpoint was quantized with; None for an fp32 checkpoint."""
    document = checkpoint.meta.get(QUANT_FIELD)
    if document is None:
        return None
    if not isinstance(document, dict):
        raise UserInputError(f"{checkpoint.folder / 'student.json'}: field quant: not a mapping")
    return QuantScheme.from_dict(document, str(checkpoint.folder / "student.json"))


def load_quantized(checkpoint: Checkpoint, input_shape, num_classes: int, what: str) -> nn.Module:
    """The fake-quantized student of a quantized checkpoint, eval mode, ready to export."""
    scheme = checkpoint_scheme(checkpoint)
    if scheme is None:
        raise UserInputError(f"{what} {checkpoint.folder}: not a quantized (int8) checkpoint")
    model = prepare(build_student(checkpoint.candidate, tuple(input_shape), num_classes), scheme)
    load_checked(checkpoint, model, what)
    set_mode(model, "qat")
    return model.eval()
