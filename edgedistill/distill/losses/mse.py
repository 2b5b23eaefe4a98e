"""Output regression: mean squared error between student and teacher outputs.

For regression heads this is the distillation loss itself; on classifiers it is logit matching
(Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?", arXiv:1312.6184). Add a `ce` term
to also learn from the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.distill.losses._registry import LOSSES, LossInputs, LossParams


class MSEParams(LossParams):
    pass


@dataclass(frozen=True)
class MSETerm:
    needs_teacher: bool = True
    pairs: tuple = ()

    def adapter(self, student_shape, teacher_shape):
        raise NotImplementedError("mse compares outputs, not layers")

    def __call__(self, inputs: LossInputs):
        import torch.nn.functional as F

        return F.mse_loss(inputs.student_logits, inputs.teacher_logits[0])


@LOSSES.register("mse")
class MSEFamily:
    name = "mse"
    kind = "term"
    needs_teacher = True
    params_model = MSEParams

    def build(self, params: MSEParams) -> MSETerm:
        return MSETerm()
