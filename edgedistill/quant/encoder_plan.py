"""The int8 plan of text encoders (students/transformer.py), as int8 BERT deployments run them
(Zafrir et al. 2019; onnxruntime's and TensorRT's int8 BERT): every linear layer takes an int8
input and int8 per-channel weights and writes an int8 output; the token embeddings, LayerNorm,
softmax, GELU and tanh stay in float, between a dequantize and the next quantize.

Token ids are not quantized (they are indices). In onnxruntime the linear layers run as QGemm
and the attention matmuls, between two int8 tensors, as MatMulIntegerToFloat; a runtime without
int8 kernels for some of them runs those in float on the same int8 grid. No Edge TPU: it runs
full-integer models only.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from edgedistill.quant._registry import PLANS
from edgedistill.quant.fake import classes
from edgedistill.quant.scheme import QuantScheme

if TYPE_CHECKING:
    from torch import nn

FLOAT_LAYERS = ("Embedding", "LayerNorm", "Softmax", "GELU", "Tanh", "Dropout", "Identity")


@PLANS.register("encoder")
class EncoderPlan:
    name = "encoder"
    quantize_input = False
    summary = (
        "int8 linear layers (int8 inputs, per-channel weights and outputs); token embeddings, "
        "LayerNorm, softmax, GELU and tanh in float"
    )

    def claims(self, model: nn.Module) -> bool:
        """Models that read token ids: an embedding table among their layers."""
        from torch import nn

        return any(isinstance(module, nn.Embedding) for module in model.modules())

    def unquantizable_layers(self, model: nn.Module) -> list[str]:
        from torch import nn

        return [
            f"{name or 'model'} ({type(module).__name__})"
            for name, module in model.named_modules()
            if not list(module.children())
            and not isinstance(module, nn.Linear)
            and type(module).__name__ not in FLOAT_LAYERS
        ]

    def rewrite(self, model: nn.Module, scheme: QuantScheme) -> None:
        from torch import nn

        weighted = classes()["QuantWeighted"]
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    layer = copy.deepcopy(child)
                    parent._modules[name] = weighted(layer, None, scheme, quantize_input=True)
