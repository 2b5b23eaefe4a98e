"""Edge TPU: compile the chain's full-integer (int8) TFLite with `edgetpu_compiler`.

The compiler runs on x86-64 Linux only and is a system tool (Coral's apt repository), never a
pip package. When it is on PATH the compiled `model.int8_edgetpu.tflite` joins the bundle, with
the compiler's count of operations mapped to the Edge TPU and left on the CPU; otherwise the
bundle carries the int8 TFLite and the exact command that compiles it. Compiled models run only
with the Edge TPU delegate (libedgetpu), so they are checked structurally here.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgedistill.errors import GoalNotMetError, UserInputError
from edgedistill.export._registry import EXPORTERS
from edgedistill.export.context import ExportContext
from edgedistill.export.validate import Reference, Validation
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)
COMPILER = "edgetpu_compiler"
TIMEOUT_S = 600
_ON_TPU = re.compile(r"Number of operations that will run on Edge TPU:\s*(\d+)")
_ON_CPU = re.compile(r"Number of operations that will run on CPU:\s*(\d+)")
_CUSTOM_OP = b"edgetpu-custom-op"


def compile_argv(tflite: str, out_dir: str, compiler: str = COMPILER) -> list[str]:
    """`edgetpu_compiler -s -o OUT_DIR MODEL`: -s prints the per-op mapping summary."""
    return [compiler, "-s", "-o", out_dir, tflite]


def compiled_name(tflite_name: str) -> str:
    """The compiler writes `<stem>_edgetpu.tflite` beside its log."""
    return f"{Path(tflite_name).stem}_edgetpu.tflite"


def mapped_operations(log_text: str) -> tuple[int | None, int | None]:
    """(operations on the Edge TPU, operations on the CPU) from the compiler's summary."""
    on_tpu, on_cpu = _ON_TPU.search(log_text), _ON_CPU.search(log_text)
    return (
        int(on_tpu.group(1)) if on_tpu else None,
        int(on_cpu.group(1)) if on_cpu else None,
    )


@EXPORTERS.register("edgetpu")
class EdgeTpuExporter:
    name = "edgetpu"
    runs_on = "edgetpu"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = "_edgetpu.tflite"
    precisions = ("int8",)
    consumes = "tflite"
    compiles_for_runtime = "edgetpu"  # joins the chain of profiles whose runtimes list it
    hub = False
    extra = None
    modules = ()
    tools = (COMPILER,)  # Coral's edgetpu-compiler Debian package
    validated_on = "structural (compiler's op mapping, Edge TPU custom op); runs on a Coral device"

    def check(self, precision: str, context: ExportContext) -> str | None:
        if precision not in self.precisions:
            return None  # the chain refuses or defers precisions a format does not write
        if shutil.which(COMPILER) is None:
            command = shlex.join(compile_argv(f"model.{precision}.tflite", "."))
            return (
                f"{COMPILER} is not on PATH (it runs on x86-64 Linux, from Coral's apt "
                f"repository); the full-integer model.{precision}.tflite is written here and "
                f"validated; compile it for the Edge TPU, in its folder, with: {command}"
            )
        return None

    def export(
        self,
        student,
        example,
        out: Path,
        precision: str = "int8",
        context: ExportContext | None = None,
    ) -> Artifact:
        tflite = (context.upstream if context else {}).get("tflite")
        if tflite is None:
            raise ValueError("the edgetpu exporter compiles the chain's tflite artifact")
        if precision not in self.precisions or tflite.precision != "int8":
            raise UserInputError(
                f"--precision {precision}: the Edge TPU runs full-integer int8 TFLite only"
            )
        compiler = shutil.which(COMPILER)
        if compiler is None:
            raise UserInputError(f"{COMPILER} is not on PATH")
        with tempfile.TemporaryDirectory(prefix=".edgetpu-", dir=out.parent) as scratch:
            argv = compile_argv(tflite.path, scratch, compiler)
            result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
            produced = Path(scratch) / compiled_name(Path(tflite.path).name)
            if result.returncode != 0 or not produced.is_file():
                tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-10:])
                raise GoalNotMetError(f"{COMPILER} failed on {Path(tflite.path).name}: {tail}")
            os.replace(produced, out)
        on_tpu, on_cpu = mapped_operations(result.stdout)
        return Artifact.written(
            self.name,
            precision,
            out,
            example.shape,
            built_from=Path(tflite.path).name,
            notes=[f"{COMPILER}: {on_tpu} operations on the Edge TPU, {on_cpu} on the CPU"],
        )

    def host_runner(self, path: Path) -> None:
        return None  # runs only where libedgetpu and an Edge TPU are

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        problems = []
        if _CUSTOM_OP not in Path(artifact.path).read_bytes():
            problems.append("the compiled model holds no Edge TPU custom op")
        return Validation(
            "structural",
            f"{COMPILER} output (structural: Edge TPU custom op present; runs with libedgetpu)",
            problems=tuple(problems),
        )
