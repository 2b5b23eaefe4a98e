"""Data sources; importing this package registers each one in DATA_SOURCES."""

from edgedistill.tasks.sources import builtin, imagefolder, npz, python  # noqa: F401
