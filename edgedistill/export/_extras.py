"""Optional converters and runtimes: find or import them, or raise MissingExtraError."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from edgedistill.errors import MissingExtraError


def has_module(module: str) -> bool:
    """Whether `module` can be found, without importing it (planning stays fast)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(modules: tuple[str, ...], extra: str, purpose: str) -> None:
    """Refuse up front when a module the export needs is not installed."""
    for module in modules:
        if not has_module(module):
            raise MissingExtraError(module, extra, purpose)


def import_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency; a missing or broken one names the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module, extra, purpose) from None
