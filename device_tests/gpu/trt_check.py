"""GPU check: fp16 and int8 TensorRT engines built from a fit's ONNX, timed with the lab protocol,
their outputs compared with the PyTorch student. One short prepared script for one NVIDIA GPU.

    python device_tests/gpu/trt_check.py [--run DIR] [--runs 200] [--json]

1. The fit: `--run DIR` (an int8 fit run directory: checkpoint/ holds the fp32 student,
   quantized/ the int8 one, bundle/ the int8 QDQ ONNX), else a tiny one made here
   (`fit --device host-cpu --precision int8 --task tests/data/tiny_digits.yaml --epochs 1`).
2. ONNX: the fp32 student's ONNX (the hub artifact an fp16 engine is built from) and the fit's
   int8 QDQ ONNX.
3. Engines: built by `targets/linux/trt_build.py`, the script a Jetson runs (fp16 from the fp32
   ONNX, int8 from the QDQ ONNX), into an engine cache (ONNX sha256 + TensorRT version).
4. Timing: `targets/linux/runner.py bench ENGINE`, the lab runner and its protocol (warm-up of
   at least 1 run and 0.5 s, then at least --runs runs and 1 s; host copies included).
5. Outputs: the engine (edgedistill's TensorRTRunner) against the PyTorch student on the held-out
   split: max abs logit difference and argmax agreement (fp16 vs the fp32 student, int8 vs the
   fake-quantized int8 student).

Exit codes: 0 every check passed, or skipped with the reason (no tensorrt, no CUDA GPU); 1 an
engine disagrees with the student beyond tolerance, or a step failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

TINY_RECIPE = ROOT / "tests" / "data" / "tiny_digits.yaml"
MIN_AGREEMENT = {"fp16": 0.98, "int8": 0.95}  # argmax agreement with the PyTorch student


def skip_reason() -> str | None:
    """Why this machine cannot run the check, or None."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed here (pip install 'edgedistill[tensorrt]' on a GPU host)"
    try:
        import torch
    except ImportError:
        return "torch is not installed here"
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    return None


def make_fit(scratch: Path) -> Path:
    run = scratch / "run"
    argv = [sys.executable, "-m", "edgedistill", "fit", "--device", "host-cpu", "--budget",
            "10ms", "--precision", "int8", "--task", str(TINY_RECIPE), "--epochs", "1",
            "--out", str(run), "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if done.returncode not in (0, 1) or not (run / "summary.json").is_file():
        raise RuntimeError(f"the tiny fit failed: {done.stderr[-2000:]}")
    return run


def students(run: Path):
    """(fp32 student, int8 fake-quantized student, input shape, fp32 ONNX, int8 ONNX, data)."""
    import torch

    from edgedistill.export import EXPORTERS
    from edgedistill.quant.checkpoint import load_quantized
    from edgedistill.students.checkpoint import load_student, read_checkpoint

    summary = json.loads((run / "summary.json").read_text())
    shape = tuple(summary["task"]["input_shape"][1:])
    classes = len(summary["task"]["labels"])
    fp32 = load_student(read_checkpoint(run / "checkpoint", "--run"), shape, classes, "--run")
    int8 = load_quantized(read_checkpoint(run / "quantized", "--run"), shape, classes, "--run")
    onnx_fp32 = run / "student.fp32.onnx"
    EXPORTERS.get("onnx").export(fp32, torch.zeros((1, *shape)), onnx_fp32, "fp32")
    (qdq,) = [a for a in summary["artifacts"] if (a["format"], a["precision"]) == ("onnx", "int8")]
    return fp32, int8, shape, onnx_fp32, run / qdq["path"], summary


def held_out(shape, count: int = 256):
    import torch

    from edgedistill.tasks.data import iter_batches, load_task_data
    from edgedistill.tasks.task import load_recipe

    data = load_task_data(load_recipe(str(TINY_RECIPE)))
    batches = [x for x, _ in iter_batches(data.test, limit=count)]
    x = torch.cat(batches)[:count]
    assert tuple(x.shape[1:]) == tuple(shape), (x.shape, shape)
    return x


def build(onnx: Path, precision: str, cache: Path) -> dict:
    script = ROOT / "targets" / "linux" / "trt_build.py"
    argv = [sys.executable, str(script), "--onnx", str(onnx), "--precision", precision,
            "--cache-dir", str(cache)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    document = json.loads(done.stdout.strip().splitlines()[-1])
    if done.returncode != 0 or not document.get("ok"):
        raise RuntimeError(f"{precision} engine build failed: {document.get('error')}")
    return document


def time_engine(engine: str, runs: int) -> dict:
    runner = ROOT / "targets" / "linux" / "runner.py"
    argv = [sys.executable, str(runner), "bench", engine, "--runs", str(runs), "--min-seconds", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"the runner failed on {engine}: {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    latency = report["latency_ms"]
    return {
        "p50_ms": latency["p50"],
        "p90_ms": latency["p90"],
        "p99_ms": latency["p99"],
        "runs": report["timed"]["runs"],
        "timed_s": round(report["timed"]["seconds"], 3),
        "runtime": f"{report['runtime']} {report['runtime_version']} {report['runtime_detail']}",
        "gpu_state": {k: report["state_after"].get(k) for k in ("gpu_freq_mhz", "nvpmodel")},
    }


def compare(engine: str, module, x) -> dict:
    import numpy as np
    import torch

    from edgedistill.export.tensorrt import TensorRTRunner

    logits = TensorRTRunner(Path(engine)).predict(x.numpy())
    with torch.no_grad():
        reference = module(x).numpy()
    return {
        "max_abs_diff": float(np.abs(logits - reference).max()),
        "argmax_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
        "samples": len(x),
    }


def check(run: Path, runs: int, scratch: Path) -> list[dict]:
    fp32, int8, shape, onnx_fp32, onnx_int8, summary = students(run)
    x = held_out(shape)
    rows = []
    for precision, onnx, module in (("fp16", onnx_fp32, fp32), ("int8", onnx_int8, int8)):
        row: dict = {
            "precision": precision,
            "onnx": onnx.name,
            "student": summary["student"]["spec"],
        }
        built = build(onnx, precision, scratch / "engines")
        row.update(
            engine_bytes=built["bytes"], build_s=built["seconds"], tensorrt=built["tensorrt"]
        )
        row.update(time_engine(built["engine"], runs))
        row.update(compare(built["engine"], module, x))
        row["ok"] = row["argmax_agreement"] >= MIN_AGREEMENT[precision]
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an int8 fit run directory (default: make one)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = skip_reason()
    if reason is not None:
        print(json.dumps({"skipped": reason}) if args.json else f"SKIP: {reason}")
        return 0
    import tensorrt
    import torch

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trt-check-") as folder:
        scratch = Path(folder)
        run = args.run or make_fit(scratch)
        rows = check(run, args.runs, scratch)
    document = {
        "gpu": torch.cuda.get_device_name(0),
        "tensorrt": tensorrt.__version__,
        "torch": torch.__version__,
        "host": platform.node(),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(f"{document['gpu']}, TensorRT {document['tensorrt']}, torch {document['torch']}")
        for row in rows:
            print(
                f"{row['student']} {row['precision']}: build {row['build_s']:.1f} s, "
                f"p50 {row['p50_ms']:.4f} ms, p90 {row['p90_ms']:.4f} ms, p99 {row['p99_ms']:.4f}"
                f" ms ({row['runs']} runs), max|diff| {row['max_abs_diff']:.3g}, agreement "
                f"{row['argmax_agreement']:.4f} {'ok' if row['ok'] else 'FAILED'}"
            )
        print(f"total {document['seconds']} s")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
