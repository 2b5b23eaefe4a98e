"""LatencyModel: predicts p90 latency (ms) of a model from its per-layer costs on a device.

Uncalibrated, it is a roofline from the profile's datasheet figures: each layer takes the longer
of its compute time (MACs x 2 / (peak x efficiency)) and its memory time (bytes / (bandwidth x
efficiency)), plus a per-kernel launch overhead, plus a fixed per-inference overhead. Calibrated,
it is a non-negative linear model fitted to measurements on the device, one term per kind of
work, so that cheap-per-MAC dense convolutions and memory-bound depthwise ones are priced apart:
    ms = c0 + c1 * compute kernels + c2 * other kernels + c3 * aligned dense MACs
            + c4 * narrow-input dense MACs + c5 * depthwise MACs + c6 * activation bytes
            + c7 * layout changes + c8 * gated bytes + c9 * weight bytes.

Vectorised CPU and GPU kernels work on channels in blocks (onnxruntime's NCHWc layout: 16 floats
with AVX-512, 8 with AVX2; tensor cores want multiples of 8): a layer with 20 channels costs what
32 would, and a convolution whose input has fewer channels than one block runs outside the blocked
layout, several times slower per MAC, after a layout change. Squeeze-and-excitation gates leave
the blocked layout and come back (gated bytes). Weights are read once per inference: on small
feature maps with many channels that, not the MACs, sets the time (weight bytes). The block is a
property of the device and runtime, so the calibration picks it (among CHANNEL_BLOCKS, by
leave-one-out error) with the coefficients; block 1 is the plain count for runtimes that do not
block channels.

int8 artifacts have their own features (INT8_FEATURES, latency/int8.py: per-position and per-tap
costs of int8 kernels, unaligned channel counts, the float islands and gates around SE blocks)
and their own calibration: int8 is not assumed faster than fp32, it is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgedistill.latency.costs import ModelCost, padded
from edgedistill.latency.int8 import INT8_FEATURES, int8_features
from edgedistill.profiles import DeviceProfile

FEATURES = (
    "constant",
    "compute_kernels",
    "other_kernels",
    "aligned_dense_macs",
    "narrow_input_dense_macs",
    "depthwise_macs",
    "activation_bytes",
    "layout_changes",
    "gated_bytes",
    "weight_bytes",
)
CHANNEL_BLOCKS = (1, 4, 8, 16, 32)
DENSE_OPS = ("conv", "pwconv")


def feature_names(precision: str) -> tuple[str, ...]:
    """The features of the model that predicts `precision` artifacts."""
    return INT8_FEATURES if precision == "int8" else FEATURES


def features(cost: ModelCost, channel_block: int = 1, precision: str = "fp32") -> list[float]:
    """feature_names(precision) of `cost`, channels counted in blocks of `channel_block`."""
    if precision == "int8":
        return int8_features(cost, channel_block)
    aligned = narrow = depthwise = 0.0
    layout_changes = 0
    for layer in cost.layers:
        if layer.op in DENSE_OPS:
            work = layer.macs * padded(layer.channels_out, channel_block)
            if layer.channels_in >= channel_block:
                aligned += work * padded(layer.channels_in, channel_block)
            else:
                narrow += work
                layout_changes += layer.op == "pwconv"  # the stem reads the image as it is
        elif layer.op in ("linear", "matmul"):  # matmul: attention between activations
            aligned += layer.macs
        elif layer.op == "dwconv":
            depthwise += layer.macs * padded(layer.channels_out, channel_block)
    return [
        1.0,
        float(cost.compute_kernels),
        float(cost.other_kernels),
        aligned,
        narrow,
        depthwise,
        float(cost.activation_bytes),
        float(layout_changes),
        float(sum(layer.bytes_out for layer in cost.layers if layer.op == "mul")),
        float(cost.weight_bytes),
    ]


@dataclass
class LatencyModel:
    profile: DeviceProfile
    precision: str
    coefficients: list[float] | None = None  # fitted; None = datasheet roofline
    fit_error: float | None = None  # leave-one-out mean absolute relative error
    provenance: dict = field(default_factory=dict)
    channel_block: int = 1  # fitted with the coefficients

    @property
    def calibrated(self) -> bool:
        return self.coefficients is not None

    def predict(self, cost: ModelCost) -> float:
        if self.coefficients is not None:
            return sum(
                c * f
                for c, f in zip(
                    self.coefficients,
                    features(cost, self.channel_block, self.precision),
                    strict=True,
                )
            )
        return self._roofline_ms(cost)

    def _roofline_ms(self, cost: ModelCost) -> float:
        compute = self.profile.compute
        coefficients = self.profile.latency
        peak = compute.peak_ops_per_s.get(self.precision) or compute.peak_ops_per_s.get("fp32")
        if peak is None:
            peak = min(compute.peak_ops_per_s.values())
        ops_per_s = peak * coefficients.compute_efficiency
        bytes_per_s = compute.memory_bandwidth_gb_s * 1e9 * coefficients.memory_efficiency
        seconds = coefficients.per_inference_overhead_us * 1e-6
        for layer in cost.layers:
            if layer.fused:
                continue
            compute_s = 2 * layer.macs / ops_per_s
            memory_s = (layer.bytes_in + layer.bytes_out + layer.weight_bytes) / bytes_per_s
            seconds += max(compute_s, memory_s) + coefficients.per_layer_overhead_us * 1e-6
        return seconds * 1000.0

    def margin(self) -> float:
        """Safety margin on the budget: the calibration error, bounded to [5 %, 30 %]. The
        leave-one-out error already overstates the error inside the space (its held-out points
        include the extremes of the spread, which the rest must extrapolate to), so no factor."""
        if self.fit_error is None:
            return 0.3
        return min(0.3, max(0.05, self.fit_error))
