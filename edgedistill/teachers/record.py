"""Teacher: the one record of a teacher ready to distill from, whatever form it came in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


@dataclass
class Teacher:
    """`model(x)` gives logits for a batch of inputs; frozen (eval mode, no gradients)."""

    name: str  # how the run names it: `task`, or the folder of an earlier run
    model: nn.Module
    params: int
    macs: int  # at batch 1, on the task's input shape
    test_accuracy: float | None
    val_accuracy: float | None = None
    form: str = "builtin"  # a name in TEACHER_FORMS: builtin | python | onnx | earlier-run
    source: str = ""  # what the recipe or --teacher named
    cache_path: str = ""  # where its weights live (the cache, the user's weights, the .onnx)
    trained_now: bool = False
    logits_only: bool = False  # True: no layers to hook (ONNX): feature losses cannot run
    onnx_path: str | None = None  # an ONNX file that is the teacher (timed as it is)
