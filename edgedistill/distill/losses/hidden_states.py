"""Hidden-state and embedding-layer matching for text students (TinyBERT: Jiao et al. 2020,
"TinyBERT: Distilling BERT for Natural Language Understanding", arXiv:1909.10351, eq. 8 and 10).

`hidden-mse`: the output of each student encoder layer, through a learned linear projection
W (student hidden size -> teacher hidden size; none when they are equal), is regressed onto the
output of its teacher layer: MSE(h_S W, h_T) over every token, averaged over the layer pairs.
`embedding-mse`: the same on the embedding layers' outputs (default pair `embeddings=embeddings`,
the module name in both a TransformerStudent and a transformers BertModel). Pairs name modules
whose outputs are N x L x H; `_tokens.mapped_pairs` writes them from a layer mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from edgedistill.distill.losses._pairs import LayerPair, as_tuples
from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams
from edgedistill.distill.losses._tokens import token_projection

TASK_TYPES = ("classification", "embedding")


class HiddenParams(LossParams):
    pairs: list[LayerPair] = Field(
        default_factory=list, description="(student layer, teacher layer) pairs, N x L x H each"
    )


class EmbeddingLayerParams(LossParams):
    pairs: list[LayerPair] = Field(
        default_factory=lambda: [LayerPair(student="embeddings", teacher="embeddings")],
        description="the embedding layers' modules (N x L x H outputs)",
    )


@dataclass(frozen=True)
class TokenMSETerm:
    pairs: tuple[tuple[str, str], ...]
    needs_teacher: bool = True

    def adapter(self, student_shape, teacher_shape):
        return token_projection(student_shape, teacher_shape)

    def __call__(self, inputs: LossInputs):
        import torch.nn.functional as F

        losses = [F.mse_loss(student, teacher) for student, teacher in inputs.features]
        return sum(losses) / len(losses)


@LOSSES.register("hidden-mse")
class HiddenMSEFamily:
    name = "hidden-mse"
    kind = "term"
    task_types = TASK_TYPES
    needs_teacher = True
    params_model = HiddenParams

    def build(self, params: HiddenParams) -> TokenMSETerm:
        return TokenMSETerm(as_tuples(params.pairs))


@LOSSES.register("embedding-mse")
class EmbeddingMSEFamily:
    name = "embedding-mse"
    kind = "term"
    task_types = TASK_TYPES
    needs_teacher = True
    params_model = EmbeddingLayerParams

    def build(self, params: EmbeddingLayerParams) -> TokenMSETerm:
        return TokenMSETerm(as_tuples(params.pairs))
