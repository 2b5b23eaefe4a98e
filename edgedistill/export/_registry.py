"""The exporter registry: one module per format registers an Exporter under the format's name.

A format may be built from another format's artifact (`consumes`: TensorRT from ONNX, the Edge
TPU from TFLite); the chain hands that artifact over in the ExportContext, and no exporter ever
calls another one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edgedistill.errors import UserInputError
from edgedistill.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from edgedistill.export.context import ExportContext
    from edgedistill.export.validate import Reference, Validation
    from edgedistill.records.artifact import Artifact


class Exporter(Protocol):
    name: str
    runs_on: str  # the runtime that runs its artifacts, as a profile's `runtimes` names it
    suffix: str  # file name ending: model.<precision><suffix>
    precisions: tuple[str, ...]
    consumes: str | None  # the format whose artifact this one is built from; None: the student
    # A compiler for one runtime (the Edge TPU): joins the deploy chain of every profile whose
    # `runtimes` list it, after the format it consumes.
    compiles_for_runtime: str | None
    hub: bool  # written at fp32 when the chain's precision is one it does not write
    extra: str | None  # the pip extra it needs (None: always installed or a system tool)
    modules: tuple[str, ...]  # Python modules the extra provides
    tools: tuple[str, ...]  # system programs it runs
    validated_on: str  # where its artifacts can be checked, in words (the formats table)

    def check(self, precision: str, context: ExportContext) -> str | None:
        """Raise UserInputError if the export cannot work; return why it must wait for a
        device (the format then goes to `pending`); None when it can be built here."""
        ...

    def export(
        self,
        student: nn.Module,
        example: torch.Tensor,
        out: Path,
        precision: str,
        context: ExportContext | None = None,
    ) -> Artifact: ...

    def host_runner(self, path: Path) -> HostRunner | None:
        """What runs the artifact at `path` on this host (the audit, `bundle verify --run`);
        None where its runtime does not run here."""
        ...

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        """Compare the artifact's outputs with the student's where its runtime runs here, or
        check it structurally where it does not."""
        ...


@dataclass(frozen=True)
class HostRunner:
    """An artifact run by its runtime on this host: float N x C x H x W in, float outputs out
    (an int8 file's inputs quantized and outputs dequantized by the runner)."""

    predict: Callable[[np.ndarray], np.ndarray]
    runtime: str  # in words, with its version


EXPORTERS: Registry[Exporter] = Registry("export format", instances=True)


def refuse_unwritten_precision(exporter: Exporter, precision: str) -> None:
    """Every exporter's guard: a precision it does not write is bad input naming the flag."""
    if precision not in exporter.precisions:
        raise UserInputError(
            f"--precision {precision}: the {exporter.name} exporter writes "
            f"{', '.join(exporter.precisions)} in this version"
        )


def artifact_precision(exporter: Exporter, precision: str) -> str | None:
    """The precision `exporter` writes in a chain at `precision` (a hub stays fp32), or None."""
    if precision in exporter.precisions:
        return precision
    if exporter.hub and "fp32" in exporter.precisions:
        return "fp32"
    return None
