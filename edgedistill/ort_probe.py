"""The child side of a probe of an untrusted ONNX file: make its onnxruntime session and run one
batch of zeros, in a process of its own (`python -m edgedistill.ort_probe FILE DIMS... RESULT`).

Kept apart from the teachers package so the child imports onnxruntime and little else: a crash
or hang here costs the caller a record, never itself (child.py runs it, teachers/onnx_probe.py
reads the outcome).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgedistill.child import write_result
from edgedistill.ort import onnx_session


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def probe(path: str, input_shape: tuple[int, ...]) -> dict:
    """{"ok": true}, or {"error": the runtime's refusal}: the session made and, when the one
    float input takes N x `input_shape`, run on zeros (other signatures are the caller's to
    refuse in words)."""
    import numpy as np

    try:
        session = onnx_session(Path(path), threads=1)
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)":
            return {"ok": True}
        dims = inputs[0].shape
        if len(dims) != len(input_shape) + 1:
            return {"ok": True}
        batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else 1
        fixed = [d if isinstance(d, int) and d > 0 else want for d, want in
                 zip(dims[1:], input_shape, strict=True)]  # fmt: skip
        if fixed == list(input_shape):
            session.run(None, {inputs[0].name: np.zeros((batch, *fixed), np.float32)})
    except Exception as exc:  # the runtime refuses the file: the finding, in words
        return {"error": _first_line(exc)}
    return {"ok": True}


def main(argv: list[str]) -> None:
    path, *dims, result = argv
    write_result(result, probe(path, tuple(int(d) for d in dims)))


if __name__ == "__main__":
    main(sys.argv[1:])
