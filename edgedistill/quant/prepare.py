"""prepare(): a trained fp32 student rewritten for int8 — batch norm folded into the
convolution before it, every convolution / linear layer fused with the activation that follows
it, and an int8 quantizer on the model input and on every operation's output.

Every layer must have an int8 kernel in every runtime we export to; one that does not is
refused by name before any training (`unquantizable_layers`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.quant.fake import classes, set_mode
from edgedistill.quant.scheme import QuantScheme

if TYPE_CHECKING:
    from torch import nn

# module type name -> the floor of its output (None: any sign) for layers quantized at their
# output; layers that only move data or do nothing at inference pass through.
_OUTPUT_QUANTIZED = {
    "ReLU": 0.0,
    "ReLU6": 0.0,
    "Sigmoid": 0.0,
    "AdaptiveAvgPool2d": None,
    "AvgPool2d": None,
    "MaxPool2d": None,
    "Add": None,
    "Mul": None,
    "Resize": None,
}
_UNIT_OUTPUT = ("Sigmoid",)  # outputs in [0, 1]: fixed int8 levels (see fake.ActQuant)
_PASS_THROUGH = ("Identity", "Flatten", "Dropout")
_ACTIVATIONS = {"ReLU": "relu", "ReLU6": "relu6"}


def prepare(model: nn.Module, scheme: QuantScheme) -> nn.Module:
    """A fake-quantized copy of `model` (eval mode, in `observe` mode for calibration)."""
    problems = unquantizable_layers(model)
    if problems:
        raise UserInputError(
            "--precision int8: these layers have no int8 kernel in this version: "
            + "; ".join(problems)
        )
    folded = copy.deepcopy(model).cpu().eval()
    _rewrite(folded, scheme)
    quantized = classes()["QuantizedModel"](folded, scheme)
    set_mode(quantized, "observe")
    return quantized.eval()


def unquantizable_layers(model: nn.Module) -> list[str]:
    """'NAME (Type)' for each leaf layer that has no int8 kernel, in model order."""
    from torch import nn

    known = set(_OUTPUT_QUANTIZED) | set(_PASS_THROUGH) | {"BatchNorm2d"}
    problems = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) or list(module.children()):
            continue
        if type(module).__name__ not in known:
            problems.append(f"{name or 'model'} ({type(module).__name__})")
    return problems


def _rewrite(parent: nn.Module, scheme: QuantScheme) -> None:
    from torch import nn

    weighted = classes()["QuantWeighted"]
    wrapped = classes()["Quantized"]
    names = list(parent._modules)
    index = 0
    while index < len(names):
        name = names[index]
        module = parent._modules[name]
        index += 1
        if module is None:
            continue
        kind = type(module).__name__
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            layer = copy.deepcopy(module)
            # Only a Sequential's order is its forward order: there a batch norm and an
            # activation right after the layer are fused into it (a batch norm elsewhere is
            # refused below when it is reached).
            following = names[index : index + 2] if isinstance(parent, nn.Sequential) else []
            activation = None
            for follower in following:
                follower_module = parent._modules[follower]
                follower_kind = type(follower_module).__name__
                if (
                    follower_kind == "BatchNorm2d"
                    and activation is None
                    and index == names.index(follower)
                ):
                    _fold_batch_norm(layer, follower_module)
                elif follower_kind in _ACTIVATIONS and activation is None:
                    activation = _ACTIVATIONS[follower_kind]
                else:
                    break
                parent._modules[follower] = nn.Identity()
                index += 1
            parent._modules[name] = weighted(layer, activation, scheme)
        elif kind in _OUTPUT_QUANTIZED:
            floor = _OUTPUT_QUANTIZED[kind]
            parent._modules[name] = wrapped(module, scheme, floor, unit=kind in _UNIT_OUTPUT)
        elif kind == "BatchNorm2d":
            raise UserInputError(
                f"--precision int8: batch norm {name} does not follow a convolution; "
                "it cannot be folded"
            )
        elif kind not in _PASS_THROUGH:
            _rewrite(module, scheme)


def _fold_batch_norm(conv, norm) -> None:
    """conv(x) -> norm(conv(x)) in one convolution (eval statistics)."""
    import torch

    with torch.no_grad():
        factor = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
        conv.weight.mul_(factor.reshape(-1, *([1] * (conv.weight.dim() - 1))))
        conv.bias = torch.nn.Parameter((bias - norm.running_mean) * factor + norm.bias)


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
