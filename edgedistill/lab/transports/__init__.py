"""Lab transports, one module each. Importing this package registers every shipped transport."""

from edgedistill.lab.transports import adb, local, ssh  # noqa: F401  (register themselves)
from edgedistill.lab.transports._base import CommandResult, Transport
from edgedistill.lab.transports._registry import TRANSPORTS

__all__ = ["TRANSPORTS", "CommandResult", "Transport", "open_transport"]


def open_transport(device) -> Transport:  # type: ignore[no-untyped-def]
    """A connected transport for a lab-file device, with its run directory created."""
    return TRANSPORTS.get(device.transport)(device).open()
