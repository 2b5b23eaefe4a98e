"""Exporters, one module per format. Importing this package registers every shipped exporter."""

from edgedistill.export import coreml, edgetpu, onnx, tensorrt, tflite  # noqa: F401  (register)
from edgedistill.export._registry import EXPORTERS, Exporter, HostRunner
from edgedistill.export.context import ExportContext
from edgedistill.records.artifact import Artifact

__all__ = ["EXPORTERS", "Artifact", "ExportContext", "Exporter", "HostRunner"]
