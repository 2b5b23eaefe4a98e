"""onnxruntime sessions made one way everywhere: CPU provider, fixed threads, quiet logs, and
the file's external data checked first (onnx_external: nothing outside its folder is read).

onnxruntime is a required dependency, but importing it costs time, so it is imported where a
session is made (the CLI's --help stays instant).
"""

from __future__ import annotations

from pathlib import Path

from edgedistill.onnx_external import check_external_data


def onnx_session(path: Path, threads: int):
    """A CPU InferenceSession of the ONNX file at `path`, `threads` intra-op threads."""
    import onnxruntime as ort

    check_external_data(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
