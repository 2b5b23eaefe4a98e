"""Per-layer cost of a BERT-style encoder on token ids (Devlin et al. 2019), counted from its shape.

`model_cost` (costs.py) traces a module with forward hooks on a float input; an encoder takes
int64 token ids, and two of its heaviest steps, the attention scores Q K^T and their weighted sum
of the values, are matmuls between activations, not nn layers that a hook sees. This module
writes the same ModelCost from the architecture's numbers instead, one LayerCost per step, named
as in students/transformer.py, for a sequence of `seq_len` tokens at batch 1:

    embeddings   word and position lookups (0 MACs; the rows read, not the tables, are the bytes
                 moved), their sum and LayerNorm
    per layer    Q, K, V and output projections (4 L H^2 MACs), scores (L^2 H), softmax,
                 weighted sum (L^2 H), MLP (2 L H I), two residual adds and LayerNorms
    head         classify: pooler (H^2, on the first token) and classifier (H C);
                 embed: masked pooling, an optional projection (H E), optional L2 normalisation

Linear layers are op "linear" (as model_cost names them); the attention matmuls are op "matmul".
"""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.latency.costs import BYTES_PER_ELEMENT, LayerCost, ModelCost

ID_BYTES = 8  # int64 token ids


@dataclass(frozen=True)
class EncoderShape:
    """The numbers an encoder's cost depends on."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    seq_len: int  # tokens per input, fixed at export
    vocab_size: int
    num_outputs: int  # classes (classify head)
    head: str = "classify"  # classify | embed
    embed_dim: int | None = None  # embed head: projection to this size (None: no projection)
    normalize: bool = False  # embed head: L2-normalised output
    max_len: int | None = None  # rows of the position table; None: seq_len

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden size {self.hidden} is not a multiple of {self.heads} heads")
        if self.head not in ("classify", "embed"):
            raise ValueError(f"head must be classify or embed, not {self.head!r}")


def _layer(name: str, op: str, element: int, **counts: int) -> LayerCost:
    """A LayerCost from element counts: `inputs`, `outputs` and `params` in elements."""
    params = counts.get("params", 0)
    return LayerCost(
        name=name,
        op=op,
        macs=counts.get("macs", 0),
        params=params,
        bytes_in=counts.get("inputs", 0) * element + counts.get("id_inputs", 0) * ID_BYTES,
        bytes_out=counts.get("outputs", 0) * element,
        weight_bytes=counts.get("weights_read", params) * element,
        channels_in=counts.get("channels_in", 0),
        channels_out=counts.get("channels_out", 0),
    )


def _linear(name: str, tokens: int, cin: int, cout: int, element: int) -> LayerCost:
    return _layer(
        name,
        "linear",
        element,
        macs=tokens * cin * cout,
        params=cin * cout + cout,
        inputs=tokens * cin,
        outputs=tokens * cout,
        channels_in=cin,
        channels_out=cout,
    )


def _embeddings(shape: EncoderShape, element: int) -> list[LayerCost]:
    tokens, hidden = shape.seq_len, shape.hidden
    rows = shape.max_len or shape.seq_len
    states = tokens * hidden
    return [
        _layer(
            "embeddings.word",
            "embedding",
            element,
            params=shape.vocab_size * hidden,
            id_inputs=tokens,
            outputs=states,
            weights_read=states,
        ),
        _layer(
            "embeddings.position",
            "embedding",
            element,
            params=rows * hidden,
            outputs=states,
            weights_read=states,
        ),
        _layer("embeddings.add", "add", element, inputs=2 * states, outputs=states),
        _layer(
            "embeddings.norm",
            "layernorm",
            element,
            params=2 * hidden,
            inputs=states,
            outputs=states,
        ),
        _layer("mask", "mask", element, id_inputs=tokens, outputs=tokens),
    ]


def _encoder_layer(index: int, shape: EncoderShape, element: int) -> list[LayerCost]:
    tokens, hidden, inner = shape.seq_len, shape.hidden, shape.intermediate
    states, scores = tokens * hidden, shape.heads * tokens * tokens
    prefix = f"layers.{index}"
    attention = f"{prefix}.attention"
    return [
        _linear(f"{attention}.query", tokens, hidden, hidden, element),
        _linear(f"{attention}.key", tokens, hidden, hidden, element),
        _linear(f"{attention}.value", tokens, hidden, hidden, element),
        # heads x (L x d) @ (d x L) = L^2 H multiply-adds, and as many for probs @ values
        _layer(
            f"{attention}.scores",
            "matmul",
            element,
            macs=tokens * tokens * hidden,
            inputs=2 * states,
            outputs=scores,
        ),
        _layer(f"{attention}.probs", "softmax", element, inputs=scores + tokens, outputs=scores),
        _layer(
            f"{attention}.context",
            "matmul",
            element,
            macs=tokens * tokens * hidden,
            inputs=scores + states,
            outputs=states,
        ),
        _linear(f"{attention}.output", tokens, hidden, hidden, element),
        _layer(f"{prefix}.attention_add", "add", element, inputs=2 * states, outputs=states),
        _layer(
            f"{prefix}.attention_norm",
            "layernorm",
            element,
            params=2 * hidden,
            inputs=states,
            outputs=states,
        ),
        _linear(f"{prefix}.intermediate", tokens, hidden, inner, element),
        _layer(
            f"{prefix}.activation",
            "gelu",
            element,
            inputs=tokens * inner,
            outputs=tokens * inner,
        ),
        _linear(f"{prefix}.output", tokens, inner, hidden, element),
        _layer(f"{prefix}.output_add", "add", element, inputs=2 * states, outputs=states),
        _layer(
            f"{prefix}.output_norm",
            "layernorm",
            element,
            params=2 * hidden,
            inputs=states,
            outputs=states,
        ),
    ]


def _head(shape: EncoderShape, element: int) -> list[LayerCost]:
    hidden = shape.hidden
    if shape.head == "classify":
        return [
            _linear("pooler", 1, hidden, hidden, element),  # the first token only
            _layer("pooler_activation", "tanh", element, inputs=hidden, outputs=hidden),
            _linear("classifier", 1, hidden, shape.num_outputs, element),
        ]
    states = shape.seq_len * hidden
    layers = [_layer("pooling", "pool", element, inputs=states + shape.seq_len, outputs=hidden)]
    width = hidden
    if shape.embed_dim is not None:
        layers.append(_linear("projection", 1, hidden, shape.embed_dim, element))
        width = shape.embed_dim
    if shape.normalize:
        layers.append(_layer("normalize", "normalize", element, inputs=width, outputs=width))
    return layers


def transformer_cost(shape: EncoderShape, precision: str = "fp32") -> ModelCost:
    """Every step's MACs, parameters and bytes for one input of `shape.seq_len` token ids."""
    element = BYTES_PER_ELEMENT[precision]
    layers = _embeddings(shape, element)
    for index in range(shape.layers):
        layers += _encoder_layer(index, shape, element)
    layers += _head(shape, element)
    return ModelCost(
        layers=tuple(layers),
        params=sum(layer.params for layer in layers),
        macs=sum(layer.macs for layer in layers),
        precision=precision,
    )
