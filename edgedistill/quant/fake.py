"""Fake-quantized layers: float training that sees int8 rounding, exportable as Q/DQ ops.

Four modes, set on the whole model by `set_mode`:
  observe  activations pass unchanged; each quantizer records the min and max it sees
           (post-training calibration)
  qat      activations and weights are rounded to the int8 grid in the forward pass and
           gradients pass straight through (Bengio et al. 2013; Jacob et al. 2018); in train
           mode the activation ranges follow an exponential moving average
  export   the same rounding written as explicit quantize / dequantize ops with constant
           scales, int8 weights stored as int8: what torch.onnx lowers to QuantizeLinear /
           DequantizeLinear and litert-torch to int8 TFLite kernels
  weights  weights are float constants on the int8 grid (each exactly q * scale), activations
           pass through unquantized: the float graph for a converter that quantizes weights
           itself and recovers the same int8 values and scales (coremltools'
           linear_quantize_weights)

The classes are built on first use so that importing the package does not import torch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from edgedistill.quant.scheme import QMAX, QMIN, WEIGHT_QMAX, QuantScheme

MODES = ("observe", "qat", "export", "weights")
EMA = 0.01  # weight of a new batch in a QAT activation range
CLAMPS = {"relu": (0.0, None), "relu6": (0.0, 6.0)}
UNIT_PARAMS = (1.0 / 256, -128)  # int8 levels of [0, 1): TFLite's fixed sigmoid output


def activation_params(low: float, high: float, symmetric: bool) -> tuple[float, int]:
    """(scale, zero point) that represent [low, high] (widened to hold 0) in int8.

    The scale is a float32 (what every runtime stores) whose top level does not pass `high`:
    a runtime then drops a clamp (ReLU6) before the quantize as redundant and fuses the
    convolution into an int8 kernel (onnxruntime's ClipQuantFusion)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if symmetric:
        bound = max(-low, high)
        if bound <= 0:
            return 1.0, 0
        return _float32_within(bound / QMAX, QMAX, bound), 0
    if high - low <= 0:
        return 1.0, 0
    scale = (high - low) / (QMAX - QMIN)
    zero_point = max(QMIN, min(QMAX, int(round(QMIN - low / scale))))
    return _float32_within(scale, QMAX - zero_point, high), zero_point


def _float32_within(scale: float, levels: int, high: float) -> float:
    """`scale` as a float32, stepped down until `levels` steps of it stay within `high`.

    A rounded zero point can leave `scale * levels` half a level above `high`: thousands of
    float32 steps. The search starts two steps above high / levels instead (no larger scale
    passes; the test is monotone in the scale), so it takes a few."""
    import numpy as np

    scale32 = np.float32(scale)
    if levels > 0:
        start = np.float32(high / levels)
        for _ in range(2):
            start = np.nextafter(start, np.float32(np.inf))
        scale32 = min(scale32, start)
    while levels > 0 and np.float32(scale32 * np.float32(levels)) > np.float32(high):
        scale32 = np.nextafter(scale32, np.float32(0))
    return float(scale32)


@functools.cache
def classes() -> dict[str, Any]:
    import torch
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
    import torch.nn.functional as F
    from torch import nn

    qd = torch.ops.quantized_decomposed

    class ActQuant(nn.Module):
        """Per-tensor int8 quantizer of one activation. `floor`: the tensor is never below it
        (a ReLU output), so the range starts there and no level is spent below it."""

        def __init__(
            self, scheme: QuantScheme, floor: float | None = None, unit: bool = False
        ) -> None:
            super().__init__()
            self.symmetric = scheme.symmetric_activations
            self.floor = floor
            # A [0, 1] output (sigmoid): TFLite's int8 kernels require exactly scale 1/256,
            # zero point -128 there, so an asymmetric scheme uses those levels.
            self.unit = unit and not self.symmetric
            self.mode = "observe"
            self.frozen: tuple[float, int] | None = None  # export mode: constant (scale, zp)
            self.register_buffer("low", torch.tensor(float("inf")))
            self.register_buffer("high", torch.tensor(float("-inf")))

        def params(self) -> tuple[float, int]:
            if self.unit:
                return UNIT_PARAMS
            low, high = float(self.low), float(self.high)
            if low > high:
                raise RuntimeError("activation quantizer was never calibrated")
            if self.floor is not None:
                low = self.floor
            return activation_params(low, high, self.symmetric)

        def forward(self, x):
            if self.mode == "weights":
                return x
            if self.mode == "observe":
                with torch.no_grad():
                    self.low.copy_(torch.minimum(self.low, x.detach().min()))
                    self.high.copy_(torch.maximum(self.high, x.detach().max()))
                return x
            if self.mode == "qat" and self.training:
                with torch.no_grad():
                    self.low.mul_(1 - EMA).add_(EMA * x.detach().min())
                    self.high.mul_(1 - EMA).add_(EMA * x.detach().max())
            if self.mode == "export":
                assert self.frozen is not None
                scale, zero_point = self.frozen
                q = qd.quantize_per_tensor.default(x, scale, zero_point, QMIN, QMAX, torch.int8)
                return qd.dequantize_per_tensor.default(
                    q, scale, zero_point, QMIN, QMAX, torch.int8
                )
            scale, zero_point = self.params()
            return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, QMIN, QMAX)

    def weight_scales(weight):
        bound = weight.detach().abs().flatten(1).amax(dim=1)
        return torch.where(bound > 0, bound / WEIGHT_QMAX, torch.ones_like(bound))

    class QuantWeighted(nn.Module):
        """A convolution or linear layer (batch norm already folded in) with int8 per-channel
        weights, its activation (ReLU / ReLU6 or none) and its output quantizer;
        `quantize_input`: an input quantizer too, for a layer whose input comes from a float
        operation (LayerNorm, GELU in a text encoder) rather than from another quantizer."""

        def __init__(
            self,
            layer,
            activation: str | None,
            scheme: QuantScheme,
            quantize_input: bool = False,
        ) -> None:
            super().__init__()
            self.layer = layer
            self.activation = activation
            self.mode = "observe"
            self.frozen: tuple[Any, ...] | None = None  # export / weights: int8_weight()
            floor = CLAMPS[activation][0] if activation else None
            self.input = ActQuant(scheme) if quantize_input else None
            self.out = ActQuant(scheme, floor)

        def quantized_weight(self):
            weight = self.layer.weight
            if self.mode == "observe":
                return weight
            if self.mode == "weights":
                assert self.frozen is not None
                return self.frozen[0]  # float, on the int8 grid
            if self.mode == "export":
                assert self.frozen is not None
                q, scales, zeros = self.frozen
                if q.dtype != torch.int8:  # the weight on the int8 grid, quantized in-graph
                    q = qd.quantize_per_channel.default(
                        q, scales, zeros, 0, -WEIGHT_QMAX, WEIGHT_QMAX, torch.int8
                    )
                return qd.dequantize_per_channel.default(
                    q, scales, zeros, 0, -WEIGHT_QMAX, WEIGHT_QMAX, torch.int8
                )
            scales = weight_scales(weight)
            zeros = torch.zeros_like(scales, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(
                weight, scales, zeros, 0, -WEIGHT_QMAX, WEIGHT_QMAX
            )

        def int8_weight(self):
            """(int8 weight, per-channel scales, zero points): what every runtime stores."""
            with torch.no_grad():
                weight = self.layer.weight.detach()
                scales = weight_scales(weight)
                shape = (-1,) + (1,) * (weight.dim() - 1)
                q = torch.round(weight / scales.reshape(shape))
                q = torch.clamp(q, -WEIGHT_QMAX, WEIGHT_QMAX)
                zeros = torch.zeros(len(scales), dtype=torch.int64)
                return q.to(torch.int8), scales.float(), zeros

        def forward(self, x):
            if self.input is not None:
                x = self.input(x)
            weight = self.quantized_weight()
            if isinstance(self.layer, nn.Linear):
                y = F.linear(x, weight, self.layer.bias)
            else:
                c = self.layer
                y = F.conv2d(x, weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
            if self.activation == "relu":
                y = F.relu(y)
            elif self.activation == "relu6":
                y = F.relu6(y)
            return self.out(y)

    class Quantized(nn.Module):
        """Any other module (add, multiply, pooling, sigmoid, resize) followed by an output
        quantizer; `floor` as for ActQuant."""

        def __init__(
            self, inner, scheme: QuantScheme, floor: float | None = None, unit: bool = False
        ) -> None:
            super().__init__()
            self.inner = inner
            self.out = ActQuant(scheme, floor, unit)

        def forward(self, *args):
            return self.out(self.inner(*args))

    class QuantizedModel(nn.Module):
        """The student rewritten by a quantization plan (`plan`, quant/_registry.py), with its
        input quantized when it is float (pixels: what every int8 runtime is fed; token ids
        pass as they are)."""

        def __init__(
            self, model, scheme: QuantScheme, quantize_input: bool = True, plan: str = "conv"
        ) -> None:
            super().__init__()
            self.input = ActQuant(scheme) if quantize_input else None
            self.model = model
            self.plan = plan

        def forward(self, x):
            return self.model(x if self.input is None else self.input(x))

    return {
        "ActQuant": ActQuant,
        "QuantWeighted": QuantWeighted,
        "Quantized": Quantized,
        "QuantizedModel": QuantizedModel,
    }


def set_mode(model, mode: str, int8_weights: bool = True) -> None:
    """Switch every quantizer of a prepared model to `mode` (see the module's docstring).

    `int8_weights` (export mode): weights stored as int8 constants (what onnxruntime and
    TensorRT take); False stores them as float values on the int8 grid followed by an explicit
    quantize op, the pattern litert-torch lowers to int8 TFLite weights."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}")
    act, weighted = classes()["ActQuant"], classes()["QuantWeighted"]
    for module in model.modules():
        if isinstance(module, (act, weighted)):
            module.mode = mode
            module.frozen = None
        if mode == "export" and isinstance(module, act):
            module.frozen = module.params()
        elif mode in ("export", "weights") and isinstance(module, weighted):
            q, scales, zeros = module.int8_weight()
            if mode == "weights" or not int8_weights:
                q = q.float() * scales.reshape((-1,) + (1,) * (q.dim() - 1))
            module.frozen = (q, scales, zeros)


def is_quantized(model) -> bool:
    return isinstance(model, classes()["QuantizedModel"])


def current_mode(model) -> str:
    for module in model.modules():
        if isinstance(module, classes()["ActQuant"]):
            return module.mode
    return "qat"


@contextlib.contextmanager
def exporting(model, int8_weights: bool = True, mode: str = "export") -> Iterator[Any]:
    """`model` in export mode (constant scales, explicit quantize / dequantize ops), or in
    `weights` mode when asked, for the duration, eval mode; its previous mode after."""
    if mode not in ("export", "weights"):
        raise ValueError(f"exporting takes mode 'export' or 'weights', not {mode!r}")
    previous = current_mode(model)
    set_mode(model, mode, int8_weights)
    try:
        yield model.eval()
    finally:
        set_mode(model, previous)


def float_model(model):
    """The student a prepared model was rewritten from (its attributes: a text student's
    vocabulary); `model` itself when it is not prepared."""
    return model.model if is_quantized(model) else model


def is_symmetric(model) -> bool:
    """Whether a prepared model's activations are quantized with zero points of 0."""
    return any(
        module.symmetric for module in model.modules() if isinstance(module, classes()["ActQuant"])
    )


def output_step(model, x) -> float | None:
    """The quantization step of a prepared model's output (its last quantizer's scale)."""
    import torch

    quantizer = classes()["ActQuant"]
    producers: dict[int, Any] = {}
    hooks = [
        module.register_forward_hook(
            lambda module, inputs, output: producers.__setitem__(id(output), module)
        )
        for module in model.modules()
        if isinstance(module, quantizer)
    ]
    try:
        with torch.no_grad():
            y = model(x)
        producer = producers.get(id(y))
        return producer.params()[0] if producer is not None else None
    finally:
        for hook in hooks:
            hook.remove()
