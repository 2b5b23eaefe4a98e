"""The GPU check (trt_check.py) as a test: runs on an NVIDIA GPU with TensorRT, else skips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu
CHECK = Path(__file__).resolve().parent / "trt_check.py"


def test_fp16_and_int8_engines_agree_with_the_student_and_are_timed():
    done = subprocess.run(
        [sys.executable, str(CHECK), "--json"], capture_output=True, text=True, timeout=3000
    )
    document = json.loads(done.stdout)
    if "skipped" in document:
        pytest.skip(document["skipped"])
    assert done.returncode == 0, json.dumps(document["rows"], indent=2)
    assert {row["precision"] for row in document["rows"]} == {"fp16", "int8"}
