"""The ONNX teacher's first load, done in a child process with a time limit: a file that makes
onnxruntime crash or hang is refused naming the file and what happened, and the toolkit goes on.

The child (edgedistill/ort_probe.py) makes the session and runs one batch of zeros when the
input takes the data's shape; the caller then loads the file itself, knowing onnxruntime
survives it. The external-data check runs first, here, before any process opens the model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgedistill.child import model_timeout_s, run_child
from edgedistill.errors import UserInputError
from edgedistill.onnx_external import check_external_data

_CHILD = "edgedistill.ort_probe"


def probe_onnx_teacher(path: Path, input_shape: tuple[int, ...], what: str) -> None:
    """Refuse (UserInputError naming `what` and `path`) a teacher file whose external data
    leaves its folder, or that onnxruntime refuses, crashes on or hangs on."""
    check_external_data(path, what)
    timeout_s = model_timeout_s()
    with tempfile.TemporaryDirectory(prefix="edgedistill-probe-") as folder:
        outcome = run_child(_CHILD, [str(path), *map(str, input_shape)], timeout_s, Path(folder))
    if outcome.failure is not None:
        raise UserInputError(f"{what}: {path}: onnxruntime {outcome.failure} loading it")
    assert outcome.result is not None
    error = outcome.result.get("error")
    if error:
        raise UserInputError(f"{what}: {path}: onnxruntime cannot load it ({error})")
