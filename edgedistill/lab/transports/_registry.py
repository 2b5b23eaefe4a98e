"""The transport registry: one module per transport registers its Transport class by name."""

from __future__ import annotations

from edgedistill.lab.transports._base import Transport
from edgedistill.registry import Registry

TRANSPORTS: Registry[type[Transport]] = Registry("lab transport")
