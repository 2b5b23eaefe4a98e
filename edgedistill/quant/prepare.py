"""prepare(): a trained fp32 student rewritten for int8 by the plan that claims it (an image
CNN: conv_plan.py; a text encoder: encoder_plan.py), and calibrate(): its activation ranges from
sample inputs.

Every layer must have an int8 form in every runtime we export to; one that does not is refused
by name before any training (`unquantizable_layers`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.quant import conv_plan, encoder_plan  # noqa: F401  (register the plans)
from edgedistill.quant._registry import PLAN_ORDER, PLANS, QuantPlan
from edgedistill.quant.fake import classes, set_mode
from edgedistill.quant.scheme import QuantScheme

if TYPE_CHECKING:
    from torch import nn


def plan_for(model: nn.Module) -> QuantPlan:
    """The first plan (PLAN_ORDER) that claims `model`."""
    return next(plan for plan in map(PLANS.get, PLAN_ORDER) if plan.claims(model))


def prepare(model: nn.Module, scheme: QuantScheme) -> nn.Module:
    """A fake-quantized copy of `model` (eval mode, in `observe` mode for calibration)."""
    plan = plan_for(model)
    problems = plan.unquantizable_layers(model)
    if problems:
        raise UserInputError(
            "--precision int8: these layers have no int8 kernel in this version: "
            + "; ".join(problems)
        )
    rewritten = copy.deepcopy(model).cpu().eval()
    plan.rewrite(rewritten, scheme)
    quantized = classes()["QuantizedModel"](
        rewritten, scheme, quantize_input=plan.quantize_input, plan=plan.name
    )
    set_mode(quantized, "observe")
    return quantized.eval()


def plan_summary(model: nn.Module) -> str:
    """What of a prepared model is int8 and what stays float, in one line."""
    return PLANS.get(model.plan).summary


def unquantizable_layers(model: nn.Module) -> list[str]:
    """'NAME (Type)' for each leaf layer that has no int8 kernel, in model order."""
    return plan_for(model).unquantizable_layers(model)


def calibrate(model: nn.Module, batches) -> int:
    """Run calibration batches through a prepared model in `observe` mode; samples seen."""
    import torch

    set_mode(model, "observe")
    model.eval()
    seen = 0
    with torch.no_grad():
        for batch in batches:
            model(batch)
            seen += len(batch)
    set_mode(model, "qat")
    return seen
