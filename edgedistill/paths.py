"""Where edgedistill keeps cached teachers and calibration data (overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Cached teachers and teacher outputs: $EDGEDISTILL_CACHE_DIR or the user cache dir."""
    override = os.environ.get("EDGEDISTILL_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("edgedistill"))


def data_dir() -> Path:
    """Calibration measurements: $EDGEDISTILL_DATA_DIR or the user data dir."""
    override = os.environ.get("EDGEDISTILL_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("edgedistill"))
