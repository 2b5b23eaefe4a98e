"""ONNX export with torch.onnx's dynamo exporter: the hub format every other chain starts from."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

from edgedistill.errors import UserInputError
from edgedistill.export._registry import EXPORTERS
from edgedistill.export.artifact import Artifact

log = logging.getLogger(__name__)
OPSET = 18


class OnnxExporter:
    name = "onnx"
    suffix = ".onnx"
    precisions = ("fp32",)

    def export(self, student, example, out: Path, precision: str = "fp32") -> Artifact:
        import torch

        if precision not in self.precisions:
            raise UserInputError(
                f"--precision {precision}: the onnx exporter writes {', '.join(self.precisions)} "
                "in this version"
            )
        student = student.eval()
        for noisy in ("torch.onnx", "onnxscript", "onnx_ir"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    student,
                    (example,),
                    tmp_name,
                    input_names=["input"],
                    output_names=["logits"],
                    opset_version=OPSET,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
            os.replace(tmp_name, out)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return Artifact(
            format=self.name,
            precision=precision,
            path=str(out),
            bytes=out.stat().st_size,
            input_shape=list(example.shape),
        )


EXPORTERS.add(OnnxExporter.name, OnnxExporter())
