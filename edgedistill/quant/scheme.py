"""The int8 quantization scheme one fit uses for every format it exports.

Weights: symmetric, per output channel, int8 in [-127, 127] (what TFLite, TensorRT, Core ML and
onnxruntime all take). Activations: per tensor, int8; asymmetric (a zero point, so a ReLU6
output uses all 256 levels on [0, 6]) unless a runtime in the chain requires zero points of 0
(TensorRT's explicit-quantization mode), then symmetric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgedistill.errors import UserInputError

QMIN, QMAX = -128, 127  # activations
WEIGHT_QMAX = 127  # weights use [-127, 127]: symmetric around 0
SYMMETRIC_ONLY_RUNTIMES = ("tensorrt",)


@dataclass(frozen=True)
class QuantScheme:
    symmetric_activations: bool = False
    bits: int = 8

    @property
    def name(self) -> str:
        kind = "symmetric" if self.symmetric_activations else "asymmetric"
        return f"int{self.bits} (per-channel symmetric weights, per-tensor {kind} activations)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any], where: str) -> QuantScheme:
        try:
            return cls(**document)
        except TypeError as exc:
            raise UserInputError(f"{where}: field quant: {exc}") from None


def scheme_for(runtimes: list[str] | tuple[str, ...]) -> QuantScheme:
    """The scheme every runtime in a deploy chain accepts."""
    return QuantScheme(symmetric_activations=any(r in SYMMETRIC_ONLY_RUNTIMES for r in runtimes))
