"""TensorRT engines, built from the chain's ONNX artifact where TensorRT runs.

An engine is tied to the GPU and the TensorRT version that built it, so it is built on this
host only when `tensorrt` imports and a CUDA GPU is present; otherwise the format waits for the
device (a Jetson builds it from the bundle's ONNX with `targets/linux/trt_build.py`, whose argv
`device_build_argv` returns). fp16 uses the builder's FP16 flag (TensorRT 8.x to 10.x).
"""

from __future__ import annotations

import ctypes
import logging
import shlex
from pathlib import Path

from edgedistill import atomic
from edgedistill.errors import GoalNotMetError, UserInputError
from edgedistill.export._extras import has_module, import_extra
from edgedistill.export._quiet import converter_output
from edgedistill.export._registry import EXPORTERS, HostRunner, refuse_unwritten_precision
from edgedistill.export.context import ExportContext
from edgedistill.export.validate import Reference, Validation, compare_predictions
from edgedistill.records.artifact import Artifact

log = logging.getLogger(__name__)
EXTRA = "tensorrt"
WORKSPACE_MB = 1024
DEVICE_SCRIPT = "trt_build.py"  # targets/linux/trt_build.py, copied to the device


def cuda_device_count() -> int:
    """GPUs the CUDA driver sees, asked through libcuda itself (0 without a driver)."""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def device_build_argv(
    onnx: str, engine: str, precision: str, python: str = "python3", script: str = DEVICE_SCRIPT
) -> list[str]:
    """The argv that builds `engine` from `onnx` on a device (paths as the device sees them)."""
    return [python, script, "--onnx", onnx, "--engine", engine, "--precision", precision]


def trtexec_argv(onnx: str, engine: str, precision: str) -> list[str]:
    """The same build with NVIDIA's trtexec, for a device team that prefers it."""
    argv = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}"]
    flags = {"fp16": ["--fp16"], "int8": ["--int8"]}  # int8: the ONNX's Q/DQ scales are used
    return [*argv, *flags.get(precision, [])]


def _tensorrt():
    with converter_output("tensorrt"):
        return import_extra("tensorrt", EXTRA, "building TensorRT engines")


@EXPORTERS.register("tensorrt")
class TensorRTExporter:
    name = "tensorrt"
    runs_on = "tensorrt"  # the runtime that runs its artifacts (a profile's `runtimes`)
    suffix = ".engine"
    precisions = ("fp32", "fp16", "int8")  # int8: explicit quantization from the QDQ ONNX
    consumes = "onnx"
    compiles_for_runtime = None
    hub = False
    extra = EXTRA
    modules = ("tensorrt",)
    tools = ()
    validated_on = "host with tensorrt and a CUDA GPU (outputs compared); else built on the device"

    def check(self, precision: str, context: ExportContext) -> str | None:
        onnx_precision = "int8" if precision == "int8" else "fp32"  # the chain's ONNX hub
        onnx, engine = f"model.{onnx_precision}.onnx", f"model.{precision}{self.suffix}"
        script = shlex.join(device_build_argv(onnx, engine, precision))
        trtexec = shlex.join(trtexec_argv(onnx, engine, precision))
        build_here = (
            f"build it there from the bundle's ONNX: {script} "
            f"(targets/linux/{DEVICE_SCRIPT}), or {trtexec}"
        )
        if not has_module("tensorrt"):
            return f"engine pending a device (TensorRT is not installed on this host); {build_here}"
        if cuda_device_count() == 0:
            return f"engine pending a device (no CUDA GPU on this host); {build_here}"
        trt = _tensorrt()
        if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
            raise UserInputError(
                f"--precision fp16: TensorRT {trt.__version__} builds strongly typed networks "
                "only, and an fp16 engine then needs an fp16 ONNX file, which this version does "
                "not write; use --precision fp32, or TensorRT 10 (JetPack 6)"
            )
        return None

    def export(
        self,
        student,
        example,
        out: Path,
        precision: str = "fp16",
        context: ExportContext | None = None,
    ) -> Artifact:
        onnx = (context.upstream if context else {}).get("onnx")
        if onnx is None:
            raise ValueError("the tensorrt exporter builds from the chain's onnx artifact")
        refuse_unwritten_precision(self, precision)
        version = build_engine(Path(onnx.path), out, precision)
        return Artifact.written(
            self.name,
            precision,
            out,
            example.shape,
            built_from=Path(onnx.path).name,
            notes=[f"built with TensorRT {version} on this host; rebuild for another GPU"],
        )

    def host_runner(self, path: Path) -> HostRunner | None:
        runner = TensorRTRunner(path)
        return HostRunner(runner.predict, runner.runtime) if runner.can_run else None

    def validate(self, artifact: Artifact, reference: Reference) -> Validation:
        runner = TensorRTRunner(Path(artifact.path))
        problems = runner.io_problems(artifact.input_shape, reference.logits.shape[1])
        if problems or not runner.can_run:
            return Validation(
                "structural",
                f"TensorRT {runner.version} (structural: engine deserializes, inputs and "
                "outputs as declared; running it needs torch with CUDA)",
                problems=tuple(problems),
            )
        return compare_predictions(runner.predict, reference, runner.runtime)


def build_engine(onnx: Path, out: Path, precision: str, workspace_mb: int = WORKSPACE_MB) -> str:
    """Parse `onnx`, build and serialize the engine to `out` atomically; returns the version."""
    trt = _tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode from 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx.read_bytes()):
        errors = " | ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserInputError(f"{onnx.name}: the TensorRT ONNX parser refused it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8" and hasattr(trt.BuilderFlag, "INT8"):  # Q/DQ give the scales
        config.set_flag(trt.BuilderFlag.INT8)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise GoalNotMetError(f"TensorRT {trt.__version__} could not build an engine from {onnx}")
    atomic.write_bytes(out, bytes(serialized))
    return trt.__version__


class TensorRTRunner:
    """A deserialized engine with one input and one output; runs through torch's CUDA memory."""

    def __init__(self, engine_path: Path) -> None:
        trt = _tensorrt()
        self.version = trt.__version__
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise GoalNotMetError(f"{engine_path}: TensorRT {self.version} cannot deserialize it")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.can_run = _torch_has_cuda()
        self.runtime = f"TensorRT {self.version} on {_gpu_name()}"

    def io_problems(self, input_shape: list[int], num_classes: int) -> list[str]:
        problems = []
        if self.inputs != ["input"] or self.outputs != ["logits"]:
            problems.append(f"io tensors {self.inputs} -> {self.outputs}, expected input -> logits")
            return problems
        found_in = list(self.engine.get_tensor_shape("input"))
        found_out = list(self.engine.get_tensor_shape("logits"))
        if found_in != input_shape:
            problems.append(f"input shape {found_in}, expected {input_shape}")
        if found_out != [input_shape[0], num_classes]:
            problems.append(f"logits shape {found_out}, expected {[input_shape[0], num_classes]}")
        return problems

    def predict(self, batch):
        import numpy as np
        import torch

        context = self.engine.create_execution_context()
        shape = tuple(self.engine.get_tensor_shape("logits"))
        stream = torch.cuda.Stream()
        outputs = []
        for index in range(len(batch)):
            x = torch.from_numpy(np.ascontiguousarray(batch[index : index + 1])).cuda()
            y = torch.empty(shape, dtype=torch.float32, device="cuda")
            context.set_tensor_address("input", x.data_ptr())
            context.set_tensor_address("logits", y.data_ptr())
            torch.cuda.current_stream().synchronize()
            if not context.execute_async_v3(stream.cuda_stream):
                raise GoalNotMetError("TensorRT execution failed")
            stream.synchronize()
            outputs.append(y.cpu().numpy())
        return np.concatenate(outputs)


def _torch_has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _gpu_name() -> str:
    if _torch_has_cuda():
        import torch

        return torch.cuda.get_device_name(0)
    return "this host's GPU"
