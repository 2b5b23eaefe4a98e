"""The registry of quantization plans: how one kind of student is rewritten for int8.

A plan claims the models it knows (an image CNN, a text encoder), lists the layers it has no
int8 form for, and rewrites a copy in place with the fake-quantized layers of quant/fake.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from edgedistill.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.quant.scheme import QuantScheme


class QuantPlan(Protocol):
    name: str
    quantize_input: bool  # float inputs (pixels) are quantized; token ids are not
    summary: str  # what is int8 and what stays float, in one line (artifact notes, the card)

    def claims(self, model: nn.Module) -> bool: ...

    def unquantizable_layers(self, model: nn.Module) -> list[str]: ...

    def rewrite(self, model: nn.Module, scheme: QuantScheme) -> None: ...


PLANS: Registry[QuantPlan] = Registry("quantization plan", instances=True)
PLAN_ORDER = ("encoder", "conv")  # the first plan that claims a model rewrites it
