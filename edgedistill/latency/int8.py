"""Features of the int8 latency model: where int8 kernels cost what fp32 ones do not.

An int8 QDQ ONNX on onnxruntime's CPU provider runs each convolution as one int8 kernel
(QLinearConv, NHWC) and leaves in float, between a DequantizeLinear and a QuantizeLinear, the ops
that have no int8 kernel. Per-node profiles of fp32 and int8 students on an AVX-512 (VNNI) x86
host, onnxruntime 1.32, 1 thread (`benchmarks/int8_latency.py --nodes SPEC`), and single-layer
timings show what the fp32 features miss:

- depthwise layers pay per output position and kernel tap (depthwise taps), and their channel
  count sets the code path for the whole layer: a multiple of the vector block (16 here) runs
  vectorised, a multiple of half a block runs ~4x slower per MAC (unaligned depthwise MACs), and
  any other count adds a per-tap cost on top (ragged depthwise taps). A 3x3 layer on 32x32
  takes 9 us with 16 channels, 14 us with 8, 26 us with 4, 33 us with 20; fp32 2.6-5 us;
- dense layers pay per output position and output channel past the last full block (unaligned
  dense pixels: the remainder is requantized outside the vector loop);
- a squeeze-and-excitation gate multiplies per position (QLinearMul: ~19 ns a position whatever
  the channels, gated pixels; fp32's Mul costs 0.08 ns an element), and its average pool runs in
  float on the dequantized NHWC map (~0.45 ns an element against fp32's 0.02: float-island
  bytes); the pool, the gate's two small convolutions, its sigmoid and the quantize / dequantize
  kernels around them come in fixed numbers per gate (compute and other kernels);
- residual additions are their own kernel (QLinearAdd), not fused into the convolution as
  fp32's Sum is (other kernels).

These make students with few channels, odd channel counts or SE gates slower in int8 than in
fp32 on such hosts, and wide plain ones faster. A calibration on int8 artifacts fits the
coefficients and, as for fp32, the channel block (by leave-one-out error).
"""

from __future__ import annotations

from edgedistill.latency.costs import ModelCost, padded

INT8_FEATURES = (
    "constant",
    "compute_kernels",
    "other_kernels",
    "dense_macs",
    "unaligned_dense_pixels",
    "depthwise_macs",
    "unaligned_depthwise_macs",
    "depthwise_taps",
    "ragged_depthwise_taps",
    "float_island_bytes",
    "gated_pixels",
)
DENSE_OPS = ("conv", "pwconv")
# no int8 kernel: dequantized, run in float (pooling in a CNN; in a text encoder, whose linear
# layers alone are int8 (quant/encoder_plan.py), everything between them)
FLOAT_ISLAND_OPS = (
    "adaptiveavgpool",
    "avgpool",
    "embedding",
    "layernorm",
    "softmax",
    "gelu",
    "tanh",
    "pool",
    "normalize",
)
INT8_MATMUL_OPS = ("linear", "matmul")  # matmul: attention between two int8 activations
GATE_OPS = ("mul",)


def int8_features(cost: ModelCost, channel_block: int) -> list[float]:
    """INT8_FEATURES of `cost`, channels counted in blocks of `channel_block`."""
    half_block = max(1, channel_block // 2)
    dense_macs = unaligned_dense = depthwise_macs = unaligned_depthwise = taps = ragged = 0.0
    for layer in cost.layers:
        if layer.op in DENSE_OPS:
            blocks = padded(layer.channels_in, channel_block)
            dense_macs += layer.macs * blocks * padded(layer.channels_out, channel_block)
            unaligned_dense += layer.pixels * (layer.channels_out % channel_block)
        elif layer.op in INT8_MATMUL_OPS:
            dense_macs += layer.macs
        elif layer.op == "dwconv":
            depthwise_macs += layer.macs * padded(layer.channels_out, channel_block)
            unaligned_depthwise += layer.macs if layer.channels_out % channel_block else 0
            taps += layer.pixels * layer.taps
            ragged += layer.pixels * layer.taps if layer.channels_out % half_block else 0
    return [
        1.0,
        float(cost.compute_kernels),
        float(cost.other_kernels),
        dense_macs,
        unaligned_dense,
        depthwise_macs,
        unaligned_depthwise,
        taps,
        ragged,
        float(sum(layer.bytes_in for layer in cost.layers if layer.op in FLOAT_ISLAND_OPS)),
        float(sum(layer.pixels for layer in cost.layers if layer.op in GATE_OPS)),
    ]
