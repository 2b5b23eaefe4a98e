"""Data sources; importing this package registers each one in DATA_SOURCES."""

from edgedistill.tasks.sources import builtin, imagefolder, npz, python  # noqa: F401  (register)
from edgedistill.tasks.sources._registry import DATA_SOURCES, DataAdapter, SourceContext

__all__ = ["DATA_SOURCES", "DataAdapter", "SourceContext"]
