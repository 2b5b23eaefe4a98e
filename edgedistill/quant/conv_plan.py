"""The int8 plan of image CNNs: batch norm folded into the convolution before it, every
convolution / linear layer fused with the activation that follows it, and an int8 quantizer on
the model input and on every operation's output (full-integer: what the Edge TPU and integer-only
NPUs run).

Every layer must have an int8 kernel in every runtime we export to; one that does not is
refused by name before any training (`unquantizable_layers`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.quant._registry import PLANS
from edgedistill.quant.fake import classes
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


@PLANS.register("conv")
class ConvPlan:
    name = "conv"
    quantize_input = True
    summary = "full integer: int8 input, weights, activations and outputs"

    def claims(self, model: nn.Module) -> bool:
        return True  # the default plan: what no other plan claims is judged layer by layer

    def unquantizable_layers(self, model: nn.Module) -> list[str]:
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

    def rewrite(self, model: nn.Module, scheme: QuantScheme) -> None:
        _rewrite(model, scheme)


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
