"""Where the device-side code (`targets/`) lives: inside the wheel, or beside a source checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def targets_dir() -> Path:
    packaged = Path(str(resources.files("edgedistill"))) / "_targets"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "targets"


def target_file(relative: str) -> Path:
    """A device-side file by its path under targets/, e.g. `linux/runner.py`."""
    path = targets_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(f"device-side file {relative} is missing from {targets_dir()}")
    return path
