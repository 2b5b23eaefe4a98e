"""The transport registry: one module per transport registers its Transport class by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.registry import Registry

if TYPE_CHECKING:
    from edgedistill.lab.transports._base import Transport

TRANSPORTS: Registry[type[Transport]] = Registry("lab transport")
