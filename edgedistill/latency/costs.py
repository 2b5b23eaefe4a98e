"""Per-layer cost extraction: op type, MACs, parameters and activation bytes, traced with hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill.inputs import example_input

if TYPE_CHECKING:
    from torch import nn

BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}
# Ops a runtime fuses into the preceding conv/linear: they cost no separate kernel launch.
FUSED_OPS = {"batchnorm", "relu", "relu6", "identity", "dropout", "flatten"}
COMPUTE_OPS = {"conv", "pwconv", "dwconv", "linear", "matmul"}


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str  # conv, dwconv, pwconv, linear, batchnorm, relu6, pool, ...
    macs: int
    params: int
    bytes_in: int
    bytes_out: int
    weight_bytes: int
    channels_in: int = 0  # conv and linear layers; 0 for the rest
    channels_out: int = 0
    pixels: int = 0  # output positions (H x W) of a layer with an N x C x H x W output, else 0
    taps: int = 0  # kernel positions (kh x kw) of a convolution, else 0

    @property
    def fused(self) -> bool:
        return self.op in FUSED_OPS


@dataclass(frozen=True)
class ModelCost:
    layers: tuple[LayerCost, ...]
    params: int
    macs: int
    precision: str

    @property
    def kernels(self) -> int:
        """Layers that run as their own kernel after the usual conv+bn+activation fusion."""
        return sum(1 for layer in self.layers if not layer.fused)

    @property
    def compute_kernels(self) -> int:
        return sum(1 for layer in self.layers if layer.op in COMPUTE_OPS)

    @property
    def other_kernels(self) -> int:
        """Element-wise, pooling and resize kernels: small work, fixed launch cost each."""
        return self.kernels - self.compute_kernels

    def macs_of(self, *ops: str) -> int:
        return sum(layer.macs for layer in self.layers if layer.op in ops)

    @property
    def activation_bytes(self) -> int:
        return sum(layer.bytes_in + layer.bytes_out for layer in self.layers if not layer.fused)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)


def _op_name(module: nn.Module) -> str:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels:
            return "dwconv"
        if module.kernel_size == (1, 1):
            return "pwconv"
        return "conv"
    return type(module).__name__.lower().replace("2d", "")


def _macs(module: nn.Module, output_numel: int) -> int:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output_numel * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output_numel * module.in_features
    return 0


def _taps(module: nn.Module) -> int:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return kh * kw
    return 0


def padded(channels: int, block: int) -> float:
    """How much work `channels` channels cost when kernels process them `block` at a time."""
    return -(-channels // block) * block / channels


def _channels(module: nn.Module, side: str) -> int:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        return module.in_channels if side == "in" else module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features if side == "in" else module.out_features
    return 0


def model_cost(
    model: nn.Module, input_shape: tuple[int, ...], precision: str = "fp32"
) -> ModelCost:
    """Run one forward pass at batch 1 and record the cost of every leaf module."""
    import torch

    element = BYTES_PER_ELEMENT[precision]
    layers: list[LayerCost] = []
    handles = []

    def hook(name: str):
        def record(module, inputs, output) -> None:
            in_numel = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
            params = sum(p.numel() for p in module.parameters(recurse=False))
            layers.append(
                LayerCost(
                    name=name,
                    op="identity" if output is inputs[0] else _op_name(module),
                    macs=_macs(module, output.numel()),
                    params=params,
                    bytes_in=in_numel * element,
                    bytes_out=output.numel() * element,
                    weight_bytes=params * element,
                    channels_in=_channels(module, "in"),
                    channels_out=_channels(module, "out"),
                    pixels=output.shape[-2] * output.shape[-1] if output.dim() == 4 else 0,
                    taps=_taps(module),
                )
            )

        return record

    for name, module in model.named_modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_input(input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return ModelCost(
        layers=tuple(layers),
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(layer.macs for layer in layers),
        precision=precision,
    )
