"""Exporters, one module per format. Importing this package registers every shipped exporter."""

from edgedistill.export import onnx  # noqa: F401  (registers "onnx")
from edgedistill.export._registry import EXPORTERS, Exporter
from edgedistill.export.artifact import Artifact

__all__ = ["EXPORTERS", "Artifact", "Exporter"]
