"""Shared by the latency benchmarks: export a random-weight candidate and time it on this host."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

INPUT_SHAPE = (1, 32, 32)
NUM_CLASSES = 10


def host_line() -> str:
    from edgedistill.latency.calibration import host_fingerprint

    cpu = host_fingerprint(threads=1)["cpu"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at start"


@cache
def measure_p90(
    spec: str,
    threads: int = 1,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    precision: str = "fp32",
) -> float:
    """p90 latency (ms) of the candidate with random weights, fit's protocol, onnxruntime; at
    int8 the QDQ ONNX fit deploys (fit.probe.export_candidate)."""
    from edgedistill.fit.probe import export_candidate
    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.students import parse_student

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "candidate.onnx"
        export_candidate(parse_student(spec), input_shape, NUM_CLASSES, path, precision)
        return measure_onnx(path, BenchProtocol(threads=threads)).p90


def profile_events(path: Path, runs: int, input_shape: tuple[int, ...] = INPUT_SHAPE) -> list:
    """onnxruntime's profiling events for `runs` batch-1 runs of the model (1 thread, CPU)."""
    import json

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix("")) + "-profile"
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.zeros((1, *input_shape), np.float32)}
    for _ in range(runs):
        session.run(None, feed)
    return json.loads(Path(session.end_profiling()).read_text())
