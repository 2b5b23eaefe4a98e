"""Parameters and multiply-accumulates of an ONNX model at batch 1, read from its graph.

Parameters: every floating-point initializer. MACs: Conv, ConvTranspose, Gemm and MatMul
nodes, with output shapes from ONNX shape inference (nodes whose shapes stay unknown are not
counted, so the figure is a lower bound for exotic graphs).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _dims(value_info) -> list[int] | None:
    shape = value_info.type.tensor_type.shape
    dims = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
    return None if None in dims else dims  # type: ignore[return-value]


def onnx_cost(path: Path, input_shape: tuple[int, ...]) -> tuple[int, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)  # shapes only, no data
    graph = model.graph
    initializers = {init.name: list(init.dims) for init in graph.initializer}
    params = sum(
        math.prod(init.dims) for init in graph.initializer if init.data_type in _FLOAT_TYPES
    )
    graph_input = next(i for i in graph.input if i.name not in initializers)
    dims = graph_input.type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, *input_shape), strict=False):
        dim.Clear()
        dim.dim_value = value
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception as exc:  # a graph onnx cannot infer: count what can be counted
        log.info("shape inference failed on %s (%s); MACs left at 0", path, exc)
        return params, 0
    shapes = {
        vi.name: _dims(vi) for vi in [*inferred.value_info, *inferred.input, *inferred.output]
    }
    shapes.update(initializers)
    macs = 0
    for node in inferred.node:
        out = shapes.get(node.output[0]) if node.output else None
        if out is None:
            continue
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = shapes.get(node.input[1])
            if weight is not None:
                per_output = math.prod(weight[1:])
                if node.op_type == "ConvTranspose":
                    macs += (
                        math.prod(shapes.get(node.input[0]) or [0])
                        * weight[1]
                        * math.prod(weight[2:])
                    )
                else:
                    macs += math.prod(out) * per_output
        elif node.op_type in ("Gemm", "MatMul"):
            first = shapes.get(node.input[0])
            if first is not None:
                trans_a = any(a.name == "transA" and a.i for a in node.attribute)
                inner = first[-2] if trans_a and len(first) >= 2 else first[-1]
                macs += math.prod(out) * inner
    return int(params), int(macs)
