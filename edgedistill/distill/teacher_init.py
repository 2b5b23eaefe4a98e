"""`distill.init: teacher`: a text student starts from its teacher's embeddings and every k-th
layer where the widths match (DistilBERT, Sanh et al. 2019); where they differ it starts fresh
and hidden-state terms learn projections (TinyBERT). students/transformer.init_from_teacher does
the copying; this step finds the teacher's weights and says what happened."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edgedistill.students import transformer
from edgedistill.teachers.encoder_state import encoder_state

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)


def initialise_from_teacher(student: nn.Module, teacher: nn.Module | None) -> str:
    """Copy what the teacher can give the student; returns the note that says what it was."""
    found = encoder_state(teacher) if teacher is not None else None
    if not isinstance(student, transformer.TransformerStudent) or found is None:
        note = (
            "distill.init teacher: only a transformer student of a transformer teacher is "
            "initialised from it; this student starts fresh"
        )
    else:
        note = transformer.init_from_teacher(
            student, found.state, found.layers, teacher_heads=found.heads
        ).note
    log.info("student initialised: %s", note)
    return note
