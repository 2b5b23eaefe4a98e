"""Shared fixtures: isolated cache/data directories and a host calibration made once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TINY_RECIPE = TESTS / "data" / "tiny_digits.yaml"


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory):
    """Teachers and calibrations of the test session never touch the user's own directories."""
    root = tmp_path_factory.mktemp("edgedistill-home")
    saved = {k: os.environ.get(k) for k in ("EDGEDISTILL_CACHE_DIR", "EDGEDISTILL_DATA_DIR")}
    os.environ["EDGEDISTILL_CACHE_DIR"] = str(root / "cache")
    os.environ["EDGEDISTILL_DATA_DIR"] = str(root / "data")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def host_calibration(isolated_dirs):
    """Calibrate host-cpu once (12 measured candidates) so later fits reuse it."""
    from edgedistill.latency.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space

    profile = load_profile("host-cpu")
    return calibrate_on_host(profile, enumerate_space((1, 32, 32)), (1, 32, 32), 10, samples=12)


def run_cli(*args: str, env: dict | None = None):
    """Run `python -m edgedistill ARGS` as a user would; stdout and stderr kept apart."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "edgedistill", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
