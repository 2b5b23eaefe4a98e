"""Sentence-embedding distillation: the student's pooled embedding against the teacher's
(Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings Multilingual using Knowledge
Distillation", arXiv:2004.09813, use the MSE; the cosine is what retrieval scores with).

`cosine-embedding`: mean over the batch of 1 - cos(s, t). `mse-embedding`: mean squared
difference of the two embeddings (of the same size: give the student a projection to the
teacher's size, TransformerStudent(embed_dim=...)). The student's output and the teacher's
"logits" are the N x E embeddings; labels are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams

TASK_TYPES = ("embedding",)
COSINE_EPS = 1e-8


class EmbeddingParams(LossParams):
    pass


def _embeddings(inputs: LossInputs):
    student, teacher = inputs.student_logits, inputs.teacher_logits[0]
    if student.shape != teacher.shape:
        raise ValueError(
            f"student embeddings {list(student.shape)} and teacher embeddings "
            f"{list(teacher.shape)} differ; build the student with embed_dim={teacher.shape[-1]}"
        )
    return student, teacher


@dataclass(frozen=True)
class EmbeddingTerm:
    distance: str  # cosine | mse
    needs_teacher: bool = True
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError(f"{self.distance}_embedding compares outputs, not layers")

    def __call__(self, inputs: LossInputs):
        import torch.nn.functional as F

        student, teacher = _embeddings(inputs)
        if self.distance == "mse":
            return F.mse_loss(student, teacher)
        return (1 - F.cosine_similarity(student, teacher, dim=-1, eps=COSINE_EPS)).mean()


@LOSSES.register("cosine-embedding")
class CosineEmbeddingFamily:
    name = "cosine-embedding"
    kind = "term"
    task_types = TASK_TYPES
    needs_teacher = True
    params_model = EmbeddingParams

    def build(self, params: EmbeddingParams) -> EmbeddingTerm:
        return EmbeddingTerm("cosine")


@LOSSES.register("mse-embedding")
class MSEEmbeddingFamily:
    name = "mse-embedding"
    kind = "term"
    task_types = TASK_TYPES
    needs_teacher = True
    params_model = EmbeddingParams

    def build(self, params: EmbeddingParams) -> EmbeddingTerm:
        return EmbeddingTerm("mse")
