"""Audit a device run: its outputs for fixed inputs must match the host's (cf. MLPerf TEST01).

The device-side runner returns the outputs for a few deterministic inputs; the host computes
the same inputs with the same code (the runner module itself, imported here) and runs the
artifact with its host runtime. Any mismatch beyond a float tolerance, or a model file whose
sha256 differs from the one sent, fails the audit: the device timed something else.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from edgedistill.lab.targets import target_file

RTOL = 1e-3  # float outputs: |device - host| <= ATOL_SCALE * max(1, max|host|) + RTOL * |host|
ATOL_SCALE = 1e-4


@dataclass
class AuditResult:
    status: str  # passed | failed | skipped
    detail: str
    max_abs_diff: float | None = None


@lru_cache(maxsize=1)
def runner_module() -> ModuleType:
    """targets/linux/runner.py, imported on the host so inputs are made by the same code."""
    path = target_file("linux/runner.py")
    spec = importlib.util.spec_from_file_location("edgedistill_device_runner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def host_reference(artifact: Path, count: int = 3, threads: int = 1) -> list[list[dict[str, Any]]]:
    """The artifact's outputs on this host for the runner's fixed inputs 0..count-1."""
    runner = runner_module()
    model = runner.load_model(str(artifact), "auto", threads)
    reference = []
    for index in range(count):
        feeds = [runner.fixed_input(s["shape"], s["dtype"], index) for s in model.inputs]
        outputs = model.run(feeds)
        reference.append(
            [
                {"name": name, "shape": list(value.shape), "values": value.reshape(-1)}
                for name, value in zip(model.output_names, outputs, strict=True)
            ]
        )
    return reference


def compare(
    device_outputs: list[list[dict[str, Any]]],
    reference: list[list[dict[str, Any]]],
    model_sha256: str | None = None,
    expected_sha256: str | None = None,
) -> AuditResult:
    """Pass only when every output of every fixed input matches the host's."""
    import numpy as np

    if expected_sha256 and model_sha256 and model_sha256 != expected_sha256:
        return AuditResult("failed", f"the device ran a different file (sha256 {model_sha256})")
    if len(device_outputs) < len(reference):
        return AuditResult(
            "failed", f"{len(device_outputs)} audit inputs returned, {len(reference)} expected"
        )
    worst = 0.0
    for index, (device, host) in enumerate(zip(device_outputs, reference, strict=False)):
        if [o["name"] for o in device] != [o["name"] for o in host]:
            return AuditResult("failed", f"input {index}: output names differ from the host's")
        for got, want in zip(device, host, strict=True):
            if list(got["shape"]) != list(want["shape"]):
                return AuditResult(
                    "failed",
                    f"input {index}, output {want['name']}: shape {got['shape']} on the device, "
                    f"{want['shape']} on the host",
                )
            expected = np.asarray(want["values"], dtype=np.float64)[: len(got["values"])]
            actual = np.asarray(got["values"], dtype=np.float64)
            if actual.shape != expected.shape or not np.all(np.isfinite(actual)):
                return AuditResult("failed", f"input {index}, output {want['name']}: not finite")
            diff = np.abs(actual - expected)
            worst = max(worst, float(diff.max(initial=0.0)))
            limit = ATOL_SCALE * max(1.0, float(np.abs(expected).max(initial=0.0)))
            limit = limit + RTOL * np.abs(expected)
            if np.any(diff > limit):
                return AuditResult(
                    "failed",
                    f"input {index}, output {want['name']}: differs from the host by up to "
                    f"{float(diff.max()):.3g}",
                    worst,
                )
    return AuditResult(
        "passed",
        f"{len(reference)} fixed inputs match the host (max abs diff {worst:.3g})",
        worst if math.isfinite(worst) else None,
    )
