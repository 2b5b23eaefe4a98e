"""The exporter registry: one module per format registers an Exporter under the format's name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edgedistill.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.export.artifact import Artifact


class Exporter(Protocol):
    name: str
    suffix: str
    precisions: tuple[str, ...]

    def export(
        self, student: nn.Module, example: torch.Tensor, out: Path, precision: str
    ) -> Artifact: ...


EXPORTERS: Registry[Exporter] = Registry("export format")
