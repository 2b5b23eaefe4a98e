"""Device platforms, one module each. Importing this package registers every shipped platform."""

from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.platforms import android, linux  # noqa: F401  (register themselves)
from edgedistill.lab.platforms._base import PLATFORMS, Platform, Probe

__all__ = ["PLATFORMS", "Platform", "Probe", "platform_for"]


def platform_for(device: DeviceEntry) -> Platform:
    """The platform that runs models on `device`."""
    return PLATFORMS.get(device.platform)
