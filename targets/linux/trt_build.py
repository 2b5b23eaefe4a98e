#!/usr/bin/env python3
"""Build a TensorRT engine from an ONNX file, on the device that will run it (e.g. a Jetson).

Runs on the device with the standard library and TensorRT only: the TensorRT Python API when
`import tensorrt` works, else `trtexec` (on PATH or in /usr/src/tensorrt/bin, where JetPack puts
it). Prints one JSON document on stdout: the engine's path, size, sha256, the builder used and
its version, the build time and the engine's inputs and outputs. Exit codes: 0 built, 1 the
build failed (the message says why, with the parser's or trtexec's own words), 2 bad arguments.

    python3 trt_build.py --onnx model.fp32.onnx --engine model.fp16.engine --precision fp16
    python3 trt_build.py --onnx model.onnx --precision fp16 --cache-dir DIR [--trtexec PATH]

With --cache-dir the engine is kept in DIR under a name made of the ONNX file's sha256, the
precision and the TensorRT version (an engine is tied to that version and to the GPU, and DIR
is on the device): a second build of the same ONNX returns the cached engine ("cached": true)
after checking its sha256 against the one recorded beside it. --engine is then optional.

fp16 uses the builder's FP16 flag (TensorRT 8.x to 10.x). TensorRT 11 removed that flag and
builds only strongly typed networks, which need an ONNX file that is itself fp16; that is
refused with a clear message. int8 engines come from a quantized (Q/DQ) ONNX file, built as is.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
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


def find_trtexec(given: str | None = None) -> str | None:
    if given:
        return given if os.access(given, os.X_OK) else shutil.which(given)
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


def build_with_trtexec(
    onnx: str, engine: str, precision: str, workspace_mb: int, given: str | None = None
) -> dict:
    trtexec = find_trtexec(given)
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


def _python_api() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def tensorrt_version(use: str, trtexec: str | None) -> str:
    """The TensorRT version a build would use (the cache key needs it before building)."""
    if use == "python" or (use == "auto" and _python_api()):
        import tensorrt

        return tensorrt.__version__
    found = find_trtexec(trtexec)
    if found is None:
        return "none"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        text = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=60)
        output = text.stdout + text.stderr
        if (named := re.search(r"TensorRT version: *([\d.]+)", output)) is not None:
            return named.group(1)
        if (packed := re.search(r"\[TensorRT v(\d+)\]", output)) is not None:
            number = int(packed.group(1))  # e.g. 100300 -> 10.3.0, 8601 -> 8.6.1
            if number >= 10000:
                return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
            return f"{number // 1000}.{number // 100 % 10}.{number % 100}"
    return "unknown"


def cached_build(
    onnx: str, precision: str, cache_dir: str, workspace_mb: int, use: str, trtexec: str | None
) -> dict:
    """The engine of (ONNX sha256, precision, TensorRT version) from `cache_dir`, built once."""
    os.makedirs(cache_dir, exist_ok=True)
    onnx_sha256 = sha256_file(onnx)
    version = tensorrt_version(use, trtexec)
    key = f"{onnx_sha256[:32]}.{precision}.trt{version}"
    engine = os.path.join(cache_dir, key + ".engine")
    record = engine + ".json"
    if os.path.isfile(engine) and os.path.isfile(record):
        with open(record, encoding="utf-8") as handle:
            document = json.load(handle)
        if document.get("sha256") == sha256_file(engine):
            return {**document, "cached": True, "onnx": onnx}
    document = build(onnx, engine, precision, workspace_mb, use, trtexec)
    document.update(cached=False, cache_key=key)
    _write_atomically(record, json.dumps(document).encode())
    return document


def build(
    onnx: str,
    engine: str,
    precision: str,
    workspace_mb: int = 1024,
    use: str = "auto",
    trtexec: str | None = None,
):
    """Build `engine` from `onnx`; returns the JSON document the script prints."""
    started = time.perf_counter()
    has_python_api = _python_api()
    if use == "python" or (use == "auto" and has_python_api):
        if not has_python_api:
            raise BuildError("--use python: the tensorrt Python module is not installed here")
        details = build_with_python_api(onnx, engine, precision, workspace_mb)
    else:
        details = build_with_trtexec(onnx, engine, precision, workspace_mb, trtexec)
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
    parser.add_argument("--engine", help="where to write the engine (or give --cache-dir)")
    parser.add_argument("--cache-dir", help="keep engines here, by ONNX sha256 + TensorRT version")
    parser.add_argument("--trtexec", help="the trtexec to build with (default: PATH, JetPack's)")
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
    if not args.engine and not args.cache_dir:
        print(json.dumps({"ok": False, "error": "give --engine PATH or --cache-dir DIR"}))
        return 2
    try:
        if args.cache_dir:
            document = cached_build(
                args.onnx, args.precision, args.cache_dir, args.workspace_mb, args.use, args.trtexec
            )
        else:
            document = build(
                args.onnx, args.engine, args.precision, args.workspace_mb, args.use, args.trtexec
            )
    except BuildError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
