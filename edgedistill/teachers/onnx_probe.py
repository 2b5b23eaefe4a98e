"""The ONNX teacher's first load, done in a child process with a time limit: a file that makes
onnxruntime crash or hang is refused naming the file and what happened, and the toolkit goes on.

The child (`python -m edgedistill.teachers.onnx_probe FILE C H W RESULT`) makes the session and
runs one batch of zeros when the input takes the data's shape; the parent then loads the file
itself, knowing onnxruntime survives it. The external-data check runs first, in the parent.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from edgedistill.child import model_timeout_s, run_child, write_result
from edgedistill.errors import UserInputError
from edgedistill.onnx_external import check_external_data
from edgedistill.ort import onnx_session


def probe_onnx_teacher(path: Path, input_shape: tuple[int, ...], what: str) -> None:
    """Refuse (UserInputError naming `what` and `path`) a teacher file whose external data
    leaves its folder, or that onnxruntime refuses, crashes on or hangs on."""
    check_external_data(path, what)
    with tempfile.TemporaryDirectory(prefix="edgedistill-probe-") as folder:
        timeout_s = model_timeout_s()
        outcome = run_child(__name__, [str(path), *map(str, input_shape)], timeout_s, Path(folder))
    if outcome.failure is not None:
        raise UserInputError(f"{what}: {path}: onnxruntime {outcome.failure} loading it")
    assert outcome.result is not None
    error = outcome.result.get("error")
    if error:
        raise UserInputError(f"{what}: {path}: onnxruntime cannot load it ({error})")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def _probe(path: str, input_shape: tuple[int, ...]) -> dict:
    import numpy as np

    try:
        session = onnx_session(Path(path), threads=1)
        inputs = session.get_inputs()
        if len(inputs) == 1 and inputs[0].type == "tensor(float)":
            dims = inputs[0].shape
            if len(dims) != len(input_shape) + 1:
                return {"ok": True}  # the parent refuses the signature in words
            batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else 1
            fixed = [d if isinstance(d, int) and d > 0 else want for d, want in
                     zip(dims[1:], input_shape, strict=True)]  # fmt: skip
            if list(fixed) == list(input_shape):
                session.run(None, {inputs[0].name: np.zeros((batch, *fixed), np.float32)})
    except Exception as exc:  # the runtime refuses the file: the finding, in words
        return {"error": _first_line(exc)}
    return {"ok": True}


def main(argv: list[str]) -> None:
    path, *dims, result = argv
    write_result(result, _probe(path, tuple(int(d) for d in dims)))


if __name__ == "__main__":
    main(sys.argv[1:])
