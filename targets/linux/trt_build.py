#!/usr/bin/env python3
"""Build a TensorRT engine from an ONNX file, on the device that will run it (e.g. a Jetson).

Runs on the device with the standard library and TensorRT only: the TensorRT Python API when
`import tensorrt` works, else `trtexec` (on PATH or in /usr/src/tensorrt/bin, where JetPack puts
it). Prints one JSON document on stdout: the engine's path, size, sha256, the builder used and
its version, the build time and the engine's inputs and outputs. Exit codes: 0 built, 1 the
build failed (the message says why, with the parser's or trtexec's own words), 2 bad arguments.

    python3 trt_build.py --onnx model.fp32.onnx --engine model.fp16.engine --precision fp16

fp16 uses the builder's FP16 flag (TensorRT 8.x to 10.x). TensorRT 11 removed that flag and
builds only strongly typed networks, which need an ONNX file that is itself fp16; that is
refused with a clear message. int8 engines come from a quantized (Q/DQ) ONNX file, built as is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

PRECISIONS = ("fp32", "fp16", "int8")
TRTEXEC_PLACES = ("/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")


class BuildError(Exception):
    """The engine could not be built; the message is for the user."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def build_with_python_api(onnx: str, engine: str, precision: str, workspace_mb: int) -> dict:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if _major(trt.__version__) < 10:  # explicit batch is the only mode from TensorRT 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx, "rb") as handle:
        parsed = parser.parse(handle.read())
    if not parsed:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildError("the ONNX parser refused the model: " + " | ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise BuildError(
                f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed networks "
                "only): an fp16 engine needs an fp16 ONNX file; build fp32, or use TensorRT 10"
            )
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8" and hasattr(trt.BuilderFlag, "INT8"):  # Q/DQ carry the scales
        config.set_flag(trt.BuilderFlag.INT8)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError("TensorRT could not build the network (see its log above on stderr)")
    _write_atomically(engine, bytes(serialized))
    io_tensors = []
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        io_tensors.append({"name": tensor.name, "mode": "input", "shape": list(tensor.shape)})
    for index in range(network.num_outputs):
        tensor = network.get_output(index)
        io_tensors.append({"name": tensor.name, "mode": "output", "shape": list(tensor.shape)})
    return {"builder": "tensorrt-python", "tensorrt": trt.__version__, "io": io_tensors}


def find_trtexec() -> str | None:
    found = shutil.which("trtexec")
    if found:
        return found
    return next((path for path in TRTEXEC_PLACES if os.access(path, os.X_OK)), None)


def trtexec_argv(trtexec: str, onnx: str, engine: str, precision: str, workspace_mb: int):
    argv = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}"]
    argv.append(f"--memPoolSize=workspace:{workspace_mb}")  # MiB
    if precision == "fp16":
        argv.append("--fp16")
    if precision == "int8":  # explicit quantization: the Q/DQ nodes carry the scales
        argv.append("--int8")
    return argv


def build_with_trtexec(onnx: str, engine: str, precision: str, workspace_mb: int) -> dict:
    trtexec = find_trtexec()
    if trtexec is None:
        raise BuildError(
            "neither the TensorRT Python module nor trtexec was found on this device "
            "(JetPack installs both: apt install nvidia-tensorrt, or python3-libnvinfer)"
        )
    directory = os.path.dirname(os.path.abspath(engine))
    fd, partial = tempfile.mkstemp(prefix=".engine.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        argv = trtexec_argv(trtexec, onnx, partial, precision, workspace_mb)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if result.returncode != 0 or os.path.getsize(partial) == 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise BuildError("trtexec failed: " + " | ".join(tail))
        os.replace(partial, engine)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    version = ""
    for line in (result.stdout + result.stderr).splitlines():
        if "TensorRT version" in line:
            version = line.rsplit(":", 1)[-1].strip()
            break
    return {"builder": "trtexec", "tensorrt": version, "io": []}


def _write_atomically(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(prefix=".engine.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def build(onnx: str, engine: str, precision: str, workspace_mb: int = 1024, use: str = "auto"):
    """Build `engine` from `onnx`; returns the JSON document the script prints."""
    started = time.perf_counter()
    try:
        import tensorrt  # noqa: F401

        has_python_api = True
    except ImportError:
        has_python_api = False
    if use == "python" or (use == "auto" and has_python_api):
        if not has_python_api:
            raise BuildError("--use python: the tensorrt Python module is not installed here")
        details = build_with_python_api(onnx, engine, precision, workspace_mb)
    else:
        details = build_with_trtexec(onnx, engine, precision, workspace_mb)
    return {
        "ok": True,
        "engine": engine,
        "bytes": os.path.getsize(engine),
        "sha256": sha256_file(engine),
        "precision": precision,
        "onnx": onnx,
        "onnx_sha256": sha256_file(onnx),
        "seconds": round(time.perf_counter() - started, 3),
        **details,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, help="the ONNX file to build from")
    parser.add_argument("--engine", required=True, help="where to write the engine")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16")
    parser.add_argument("--workspace-mb", type=int, default=1024)
    parser.add_argument("--use", choices=("auto", "python", "trtexec"), default="auto")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.onnx):
        print(json.dumps({"ok": False, "error": f"--onnx {args.onnx}: no such file"}))
        return 2
    if args.workspace_mb < 16:
        print(json.dumps({"ok": False, "error": "--workspace-mb: at least 16"}))
        return 2
    try:
        document = build(args.onnx, args.engine, args.precision, args.workspace_mb, args.use)
    except BuildError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
