"""Where edgedistill keeps cached teachers and calibration data (overridable by environment),
and the one check of an output folder a command is asked to create (--out)."""

from __future__ import annotations

import os
from pathlib import Path

from edgedistill.errors import UserInputError


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


def check_new_out(out: Path, resumable: bool = False) -> None:
    """--out must be a new or empty folder (a file, or a folder with files in it, is refused);
    `resumable`: the command's --resume continues a run in that folder, and says so."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        hint = ", or add --resume to continue the run in it" if resumable else ""
        raise UserInputError(
            f"--out {out}: directory exists and is not empty; choose a new one{hint}"
        )
