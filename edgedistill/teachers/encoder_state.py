"""A transformer teacher's weights as a BERT state dict, for initialising a text student from it
(DistilBERT-style, students/transformer.init_from_teacher): the built-in transformer teacher (a
TransformerStudent) or an hf:DIR BERT classifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgedistill.students import transformer
from edgedistill.teachers.hf import HFTeacherInfo

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class EncoderState:
    state: dict[str, Any]  # BertModel naming (optionally under bert.)
    layers: int
    heads: int


def encoder_state(model: nn.Module) -> EncoderState | None:
    """The teacher's encoder weights, or None when it is not a BERT-style encoder."""
    if isinstance(model, transformer.TransformerStudent):
        return EncoderState(
            transformer.as_bert_state(model.state_dict()), model.num_layers, model.heads
        )
    info = getattr(model, "info", None)
    inner = getattr(model, "model", None)
    if (
        isinstance(info, HFTeacherInfo)
        and inner is not None
        and info.architecture.startswith("Bert")
    ):
        return EncoderState(inner.state_dict(), info.num_layers, info.num_heads)
    return None
