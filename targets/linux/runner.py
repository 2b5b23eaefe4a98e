#!/usr/bin/env python3
"""edgedistill device-side runner: load a model, warm up, time it, print one JSON document.

Runs ON the lab device with the standard library plus whichever runtime the device has
(onnxruntime; ai_edge_litert, tflite_runtime or tensorflow.lite for .tflite; for a TensorRT
.engine the tensorrt module with the CUDA runtime library, else NVIDIA's trtexec). One file, no
edgedistill install needed: the host pushes it next to the model and runs

    python3 runner.py bench MODEL [--threads 1] [--warmup-runs 1] [--warmup-seconds 0.5]
                                  [--runs 50] [--min-seconds 1] [--max-seconds 300]
                                  [--audit-inputs 3] [--trtexec PATH]
    python3 runner.py probe [--workdir DIR]

`bench` warms up for at least --warmup-runs runs and --warmup-seconds, then times at least
--runs runs and --min-seconds (stopping at --max-seconds, which the host then reports as an
invalid result), and prints latencies, init time, peak memory, the runtime and its version, the
CPU governor and clocks, temperatures and throttling flags where readable (before and after the
timed runs; on a Jetson also the GPU clock, `nvpmodel -q` and a `tegrastats` line), and the
outputs for a few fixed inputs so the host can audit them (trtexec prints none). `probe` prints
the runtimes, free disk and the same device state. Exit status: 0 with the JSON on stdout; 2 for
bad arguments or a model the runtime refuses; 3 when no runtime for the model is installed.
"""

# ruff: noqa: B905  (zip(strict=) needs Python 3.10; devices such as JetPack 5 have 3.8)
from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

RUNNER_VERSION = 1
AUDIT_VALUES = 4096  # output values kept per output for the audit
MAX_SAMPLES = 20000  # per-run times shipped up to this count (percentiles always cover all)
SUFFIX_RUNTIME = {".onnx": "onnxruntime", ".tflite": "tflite", ".engine": "tensorrt"}
RPI_THROTTLE_BITS = {  # `vcgencmd get_throttled`, Raspberry Pi documentation
    0: "under-voltage now",
    1: "arm frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "arm frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


class RunnerError(Exception):
    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# -- device state -----------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _cpu_name(path: str) -> str:
    return next(part for part in path.split("/") if part.startswith("cpu") and part[3:].isdigit())


def device_state() -> dict:
    """CPU governors and clocks, temperatures, throttling flags: what the device lets us read."""
    state: dict = {"governors": {}, "freq_mhz": {}, "max_freq_mhz": {}, "temps_c": {}}
    cpufreq = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/"
    for path in sorted(glob.glob(cpufreq + "scaling_governor")):
        value = _read(path)
        if value:
            state["governors"][_cpu_name(path)] = value
    for key, name in (("freq_mhz", "scaling_cur_freq"), ("max_freq_mhz", "cpuinfo_max_freq")):
        for path in sorted(glob.glob(cpufreq + name)):
            value = _read(path)
            if value and value.isdigit():
                state[key][_cpu_name(path)] = int(value) / 1000.0
    if state["freq_mhz"]:
        state["freq_source"] = "cpufreq"
    else:
        cpuinfo = _read("/proc/cpuinfo") or ""
        mhz = [line.split(":")[1] for line in cpuinfo.splitlines() if line.startswith("cpu MHz")]
        if mhz:
            state["freq_mhz"] = {f"cpu{i}": float(v) for i, v in enumerate(mhz)}
            state["freq_source"] = "/proc/cpuinfo (reported clock; may be nominal on a VM)"
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone[0-9]*")):
        temp = _read(zone + "/temp")
        if temp and temp.lstrip("-").isdigit():
            kind = _read(zone + "/type") or os.path.basename(zone)
            label = kind if kind not in state["temps_c"] else f"{kind}-{os.path.basename(zone)}"
            state["temps_c"][label] = int(temp) / 1000.0
    throttle: dict = {}
    counts = [_read(p) for p in glob.glob("/sys/devices/system/cpu/cpu*/thermal_throttle/*_count")]
    if counts:
        throttle["core_throttle_count"] = sum(int(c) for c in counts if c and c.isdigit())
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        try:
            out = subprocess.run(
                [vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=5
            ).stdout
            value = int(out.strip().split("=")[1], 16)
            throttle["vcgencmd_get_throttled"] = hex(value)
            throttle["flags"] = [
                text for bit, text in RPI_THROTTLE_BITS.items() if value >> bit & 1
            ]
            throttle["throttled_now"] = bool(value & 0xF)
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            pass
    state["throttle"] = throttle
    with contextlib.suppress(OSError):
        state["loadavg"] = list(os.getloadavg())
    state.update(jetson_state())
    return state


def jetson_state() -> dict:
    """GPU clock (devfreq), power mode (`nvpmodel -q`) and one `tegrastats` line, where present."""
    found: dict = {}
    for path in sorted(glob.glob("/sys/class/devfreq/*/cur_freq")):
        name = _read(os.path.join(os.path.dirname(path), "device/of_node/name")) or path
        if "gpu" in name.lower() or "gpu" in path.lower() or "ga10b" in path or "gv11b" in path:
            value = _read(path)
            if value and value.isdigit():
                found.setdefault("gpu_freq_mhz", {})[path.split("/")[4]] = int(value) / 1e6
    nvpmodel = shutil.which("nvpmodel")
    if nvpmodel:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([nvpmodel, "-q"], capture_output=True, text=True, timeout=5)
            lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            found["nvpmodel"] = " / ".join(lines[:2])
    tegrastats = shutil.which("tegrastats")
    if tegrastats:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            process = subprocess.Popen(
                [tegrastats, "--interval", "100"], stdout=subprocess.PIPE, text=True
            )
            try:
                assert process.stdout is not None
                found["tegrastats"] = process.stdout.readline().strip()
            finally:
                process.kill()
                process.wait(timeout=5)
    return found


# -- runtimes ---------------------------------------------------------------------------------
def fixed_input(shape: list, dtype: str, index: int):
    """The audit's k-th input: deterministic, the same on the host and every device."""
    import numpy as np

    dims = [d if isinstance(d, int) and d > 0 else 1 for d in shape]
    count = 1
    for d in dims:
        count *= d
    ramp = np.arange(count, dtype=np.float64)
    kind = np.dtype(dtype)
    if kind.kind == "f":
        values = np.sin(ramp * (0.37 + 0.11 * index) + index)
    elif kind.kind == "b":
        values = (ramp + index) % 2
    else:
        span = 256 if kind.itemsize == 1 else 100
        values = (ramp * (7 + 2 * index) + 3 * index) % span
        if kind.kind == "i" and kind.itemsize == 1:
            values = values - 128
    return values.astype(kind).reshape(dims)


class OnnxRuntimeModel:
    runtime = "onnxruntime"

    def __init__(self, path: str, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.version = ort.__version__
        self.detail = ",".join(self.session.get_providers())
        types = {
            "tensor(float)": "float32",
            "tensor(float16)": "float16",
            "tensor(double)": "float64",
            "tensor(int64)": "int64",
            "tensor(int32)": "int32",
            "tensor(int8)": "int8",
            "tensor(uint8)": "uint8",
            "tensor(bool)": "bool",
        }
        self.inputs = [
            {"name": i.name, "shape": list(i.shape), "dtype": types.get(i.type, "float32")}
            for i in self.session.get_inputs()
        ]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: list) -> list:
        named = {spec["name"]: value for spec, value in zip(self.inputs, feeds)}
        return self.session.run(None, named)


class TfliteModel:
    runtime = "tflite"

    def __init__(self, path: str, threads: int) -> None:
        interpreter_class, self.version = _tflite_interpreter()
        self.interpreter = interpreter_class(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.detail = "interpreter (default delegates)"
        details = self.interpreter.get_input_details()
        self.inputs = [
            {
                "name": d["name"],
                "shape": [int(x) for x in d["shape"]],
                "dtype": d["dtype"].__name__,
                "index": int(d["index"]),
            }
            for d in details
        ]
        self.outputs = self.interpreter.get_output_details()
        self.output_names = [d["name"] for d in self.outputs]

    def run(self, feeds: list) -> list:
        for spec, value in zip(self.inputs, feeds):
            self.interpreter.set_tensor(spec["index"], value)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]) for d in self.outputs]


def _tflite_interpreter():
    try:
        from ai_edge_litert import interpreter as litert

        return litert.Interpreter, f"ai_edge_litert {_version('ai-edge-litert')}"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as tflite_runtime

        return tflite_runtime.Interpreter, f"tflite_runtime {_version('tflite-runtime')}"
    except ImportError:
        pass
    import tensorflow as tf  # the last resort: a full TensorFlow

    return tf.lite.Interpreter, f"tensorflow {tf.__version__}"


def _version(distribution: str) -> str:
    try:
        from importlib.metadata import version

        return version(distribution)
    except Exception:
        return "unknown"


class TensorRTModel:
    """A TensorRT engine run through the CUDA runtime library (ctypes): copy in, execute, copy
    out, synchronize: the latency an application sees. Needs `tensorrt` and libcudart."""

    runtime = "tensorrt"

    def __init__(self, path: str, threads: int) -> None:
        import ctypes

        import numpy as np
        import tensorrt as trt

        self.np = np
        self.cuda = _cudart(ctypes)
        self.version = trt.__version__
        logger = trt.Logger(trt.Logger.WARNING)
        self.trt_runtime = trt.Runtime(logger)
        with open(path, "rb") as handle:
            self.engine = self.trt_runtime.deserialize_cuda_engine(handle.read())
        if self.engine is None:
            raise RunnerError(f"TensorRT {trt.__version__} cannot deserialize {path}")
        self.context = self.engine.create_execution_context()
        self.detail = "engine (CUDA runtime, host copies included)"
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in inputs]
        self.inputs = []
        self.buffers: dict = {}
        for name in names:
            shape = [int(d) for d in self.engine.get_tensor_shape(name)]
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            if name in inputs:
                self.inputs.append({"name": name, "shape": shape, "dtype": dtype.name})
            size = max(1, int(np.prod(shape)) * dtype.itemsize)
            pointer = ctypes.c_void_p()
            _check(self.cuda.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(size)), "cudaMalloc")
            self.buffers[name] = (pointer, shape, dtype, size)
            self.context.set_tensor_address(name, pointer.value)
        self.stream = ctypes.c_void_p()
        _check(self.cuda.cudaStreamCreate(ctypes.byref(self.stream)), "cudaStreamCreate")

    def run(self, feeds: list) -> list:
        import ctypes

        np, cuda = self.np, self.cuda
        for spec, value in zip(self.inputs, feeds):
            pointer, _, dtype, size = self.buffers[spec["name"]]
            data = np.ascontiguousarray(value, dtype=dtype)
            _check(cuda.cudaMemcpy(pointer, data.ctypes.data_as(ctypes.c_void_p), size, 1), "H2D")
        if not self.context.execute_async_v3(self.stream.value):
            raise RunnerError("TensorRT execution failed")
        outputs = []
        for name in self.output_names:
            pointer, shape, dtype, size = self.buffers[name]
            host = np.empty(shape, dtype=dtype)
            _check(cuda.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
            _check(cuda.cudaMemcpy(host.ctypes.data_as(ctypes.c_void_p), pointer, size, 2), "D2H")
            outputs.append(host)
        return outputs


def _cudart(ctypes):
    names = ["libcudart.so", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so.10.2"]
    with contextlib.suppress(ImportError):  # pip's CUDA runtime (beside torch / tensorrt wheels)
        import nvidia.cuda_runtime as wheel

        names += sorted(glob.glob(os.path.join(list(wheel.__path__)[0], "lib", "libcudart.so*")))
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise ImportError("the CUDA runtime library (libcudart) is not found")


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RunnerError(f"CUDA {what} failed with error {status}")


# One loader per runtime: a class with runtime, version, detail, inputs, output_names and
# run(feeds) -> outputs. (trtexec, for engines where the tensorrt module is missing, times the
# engine itself: see bench_with_trtexec.)
BACKENDS = {"onnxruntime": OnnxRuntimeModel, "tflite": TfliteModel, "tensorrt": TensorRTModel}


def runtime_versions() -> dict:
    found: dict = {}
    for module, name in (
        ("onnxruntime", "onnxruntime"),
        ("ai_edge_litert", "ai_edge_litert"),
        ("tflite_runtime", "tflite_runtime"),
        ("tensorrt", "tensorrt"),
    ):  # (trtexec is found by the host, from the lab file's `trtexec` field or PATH)
        try:
            imported = __import__(module)
            found[name] = getattr(imported, "__version__", None) or _version(module)
        except Exception:
            found[name] = None
    return found


def load_model(path: str, runtime: str, threads: int):
    if runtime == "auto":
        runtime = SUFFIX_RUNTIME.get(os.path.splitext(path)[1].lower(), "")
    if runtime not in BACKENDS:
        raise RunnerError(
            f"no runner backend for {path!r} (runtime {runtime or 'unknown'}; "
            f"this runner has {', '.join(BACKENDS)})",
            3,
        )
    try:
        return BACKENDS[runtime](path, threads)
    except ImportError as exc:
        raise RunnerError(f"runtime {runtime} is not installed on this device ({exc})", 3) from None
    except Exception as exc:  # each runtime raises its own types for a bad model
        raise RunnerError(f"{runtime} cannot load {path}: {exc}") from None


# -- the protocol -----------------------------------------------------------------------------
def percentile(sorted_values: list, q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def timing_fields(samples: list, seconds: float) -> dict:
    """The `timed` and `latency_ms` sections of a result from per-run latencies (ms)."""
    ordered = sorted(samples)
    return {
        "timed": {
            "runs": len(samples),
            "seconds": seconds,
            "sum_ms": sum(samples),
            "samples_ms": [round(x, 5) for x in samples] if len(samples) <= MAX_SAMPLES else None,
        },
        "latency_ms": {
            "p50": percentile(ordered, 50),
            "p90": percentile(ordered, 90),
            "p99": percentile(ordered, 99),
            "mean": sum(samples) / len(samples),
            "min": ordered[0],
            "max": ordered[-1],
        },
    }


def peak_rss_mb() -> float | None:
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)
    except (ImportError, OSError):
        return None


def bench(args: argparse.Namespace) -> dict:
    if not os.path.isfile(args.model):
        raise RunnerError(f"model {args.model!r} does not exist")
    if args.model.endswith(".engine") and not _has_tensorrt_python():
        return bench_with_trtexec(args)
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    model = load_model(args.model, args.runtime, args.threads)
    init_ms = (time.perf_counter() - started) * 1000.0
    feeds = [fixed_input(spec["shape"], spec["dtype"], 0) for spec in model.inputs]
    run = model.run

    warm_runs, started = 0, time.perf_counter()
    while warm_runs < args.warmup_runs or time.perf_counter() - started < args.warmup_seconds:
        run(feeds)
        warm_runs += 1
    warm_seconds = time.perf_counter() - started

    state_before = device_state()
    samples: list = []
    clock = time.perf_counter
    started = clock()
    while len(samples) < args.runs or clock() - started < args.min_seconds:
        if clock() - started > args.max_seconds:
            break
        t0 = clock()
        run(feeds)
        samples.append((clock() - t0) * 1000.0)
    timed_seconds = clock() - started
    state_after = device_state()

    audit_outputs = []
    for index in range(args.audit_inputs):
        outputs = run([fixed_input(s["shape"], s["dtype"], index) for s in model.inputs])
        audit_outputs.append(
            [
                {
                    "name": name,
                    "shape": list(value.shape),
                    "dtype": str(value.dtype),
                    "values": value.reshape(-1)[:AUDIT_VALUES].astype("float64").tolist(),
                }
                for name, value in zip(model.output_names, outputs)
            ]
        )
    with open(args.model, "rb") as handle:
        model_sha256 = hashlib.sha256(handle.read()).hexdigest()
    return {
        "runner_version": RUNNER_VERSION,
        "runtime": model.runtime,
        "runtime_version": model.version,
        "runtime_detail": model.detail,
        "threads": args.threads,
        "model": {"path": args.model, "sha256": model_sha256, "bytes": os.path.getsize(args.model)},
        "init_ms": init_ms,
        "warmup": {"runs": warm_runs, "seconds": warm_seconds},
        **timing_fields(samples, timed_seconds),
        "requested": {
            "warmup_runs": args.warmup_runs,
            "warmup_seconds": args.warmup_seconds,
            "runs": args.runs,
            "min_seconds": args.min_seconds,
        },
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_load_mb": rss_before,
        "state_before": state_before,
        "state_after": state_after,
        "audit": {
            "inputs": [{k: s[k] for k in ("name", "shape", "dtype")} for s in model.inputs],
            "outputs": audit_outputs,
        },
        "system": system_info(),
    }


def _has_tensorrt_python() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


TRTEXEC_PLACES = ("/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")


def find_trtexec(given: str | None) -> str | None:
    if given:
        return given if os.access(given, os.X_OK) else shutil.which(given)
    found = shutil.which("trtexec")
    return found or next((p for p in TRTEXEC_PLACES if os.access(p, os.X_OK)), None)


def bench_with_trtexec(args: argparse.Namespace) -> dict:
    """Time an engine with trtexec (its own loop, host copies included): same protocol, same
    JSON; per-run latencies from --exportTimes. trtexec prints no outputs: no audit values."""
    trtexec = find_trtexec(args.trtexec)
    if trtexec is None:
        raise RunnerError(
            "runtime tensorrt is not installed on this device (no tensorrt module, no trtexec)", 3
        )
    times = os.path.join(
        os.path.dirname(os.path.abspath(args.model)), f".trtexec-times.{os.getpid()}.json"
    )
    argv = [
        trtexec,
        f"--loadEngine={args.model}",
        f"--warmUp={int(args.warmup_seconds * 1000)}",
        f"--iterations={args.runs}",
        f"--duration={max(1, int(-(-args.min_seconds // 1)))}",
        f"--exportTimes={times}",
    ]
    state_before = device_state()
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=args.max_seconds + 60)
    except subprocess.TimeoutExpired:
        raise RunnerError(f"trtexec did not finish within {args.max_seconds + 60:g} s") from None
    wall = time.perf_counter() - started
    state_after = device_state()
    if done.returncode != 0 or not os.path.isfile(times):
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        raise RunnerError(f"trtexec failed (exit status {done.returncode}): {tail}")
    with open(times, encoding="utf-8") as handle:
        records = json.load(handle)
    os.unlink(times)
    samples = [float(r["latencyMs"]) for r in records]
    if not samples:
        raise RunnerError("trtexec exported no timings")
    seconds = (float(records[-1]["endHostMs"]) - float(records[0]["startHostMs"])) / 1000.0
    version = ""
    for line in (done.stdout + done.stderr).splitlines():
        if "TensorRT version" in line:
            version = line.rsplit(":", 1)[-1].strip()
            break
    with open(args.model, "rb") as handle:
        model_sha256 = hashlib.sha256(handle.read()).hexdigest()
    return {
        "runner_version": RUNNER_VERSION,
        "runtime": "tensorrt",
        "runtime_version": version or "unknown",
        "runtime_detail": "trtexec (host copies included)",
        "threads": args.threads,
        "model": {"path": args.model, "sha256": model_sha256, "bytes": os.path.getsize(args.model)},
        "init_ms": max(0.0, (wall - seconds - args.warmup_seconds) * 1000.0),
        "warmup": {"runs": 1, "seconds": args.warmup_seconds},  # trtexec warms up by time
        **timing_fields(samples, seconds),
        "peak_rss_mb": None,
        "state_before": state_before,
        "state_after": state_after,
        "audit": {"inputs": [], "outputs": None},
        "trtexec": {"argv": argv, "output_tail": (done.stdout + done.stderr)[-4000:]},
        "system": system_info(),
    }


def system_info() -> dict:
    return {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def probe(args: argparse.Namespace) -> dict:
    usage = shutil.disk_usage(args.workdir)
    return {
        "runner_version": RUNNER_VERSION,
        "system": system_info(),
        "runtimes": runtime_versions(),
        "free_disk_mb": usage.free / 2**20,
        "workdir": args.workdir,
        "state": device_state(),
    }


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="edgedistill device-side runner")
    commands = parser.add_subparsers(dest="command", required=True)
    timed = commands.add_parser("bench", help="time a model and print JSON")
    timed.add_argument("model")
    timed.add_argument("--runtime", default="auto", choices=["auto", *BACKENDS])
    timed.add_argument("--threads", type=int, default=1)
    timed.add_argument("--warmup-runs", type=int, default=1)
    timed.add_argument("--warmup-seconds", type=float, default=0.5)
    timed.add_argument("--runs", type=int, default=50)
    timed.add_argument("--min-seconds", type=float, default=1.0)
    timed.add_argument("--max-seconds", type=float, default=300.0)
    timed.add_argument("--audit-inputs", type=int, default=3)
    timed.add_argument("--trtexec", default=None, help="trtexec to time engines with")
    probing = commands.add_parser("probe", help="runtimes, disk and device state as JSON")
    probing.add_argument("--workdir", default=".")
    args = parser.parse_args(argv)
    try:
        if args.command == "bench" and (args.threads < 1 or args.runs < 1 or args.warmup_runs < 0):
            raise RunnerError("--threads and --runs must be at least 1, --warmup-runs at least 0")
        document = bench(args) if args.command == "bench" else probe(args)
    except RunnerError as exc:
        sys.stderr.write(f"runner: {exc}\n")
        return exc.status
    sys.stdout.write(json.dumps(document) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
