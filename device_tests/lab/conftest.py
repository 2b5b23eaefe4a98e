"""Lab device tests: the devices of $EDGEDISTILL_LAB (a devices.yaml), or skipped with a reason.

    EDGEDISTILL_LAB=devices.yaml .venv/bin/pytest device_tests/lab [-k NAME]

Every device of the lab file is a parameter; $EDGEDISTILL_LAB_TARGETS=a,b limits them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.lab_fixtures


def _lab():
    path = os.environ.get("EDGEDISTILL_LAB")
    if not path:
        return None
    from edgedistill.lab.inventory import load_lab, parse_targets

    lab = load_lab(Path(path), flag="EDGEDISTILL_LAB")
    wanted = parse_targets(os.environ.get("EDGEDISTILL_LAB_TARGETS"))
    return lab.select(wanted) if wanted else list(lab.devices.values())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab_device" not in metafunc.fixturenames:
        return
    devices = _lab()
    if devices is None:
        metafunc.parametrize(
            "lab_device",
            [
                pytest.param(
                    None,
                    marks=pytest.mark.skip(
                        reason="set EDGEDISTILL_LAB=devices.yaml to run the lab device tests"
                    ),
                )
            ],
        )
        return
    metafunc.parametrize("lab_device", devices, ids=[device.name for device in devices])
