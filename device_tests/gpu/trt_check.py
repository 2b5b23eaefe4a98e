"""GPU check: TensorRT engines from our ONNX, for a student and the digits teacher, against
onnxruntime, timed with CUDA events. Prints its figures; finishes in a few minutes on one GPU.

    python device_tests/gpu/trt_check.py [--runs 500] [--json]

For each model: export ONNX (the fit chain's hub artifact), build an fp32 and an fp16 engine
with edgedistill's host TensorRT path (the same code `fit` uses on a GPU host), run 256 inputs
(128 digits validation images and 128 seeded random ones) through the engine and onnxruntime
(CPU), report max abs logit difference and argmax agreement, then time batch-1 inference with
CUDA events (warm-up, then --runs timed runs: p50 / p90 / p99). int8 engines are built from the
quantized ONNX once the int8 exporter exists; until then the int8 row says so.

Exit codes: 0 every check passed (or skipped with a reason: no tensorrt, no GPU), 1 a check
failed (an engine disagrees with onnxruntime beyond tolerance).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

STUDENT_SPEC = "mbv2:d=2,r=32,w=1"
FP32_TOLERANCE = 1e-3  # TensorRT may use TF32 for fp32 convolutions on Ampere and later
FP16_MIN_AGREEMENT = 0.98


def skip(reason: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"skipped": reason}))
    else:
        print(f"SKIP: {reason}")
    return 0


def models():
    """(name, module) for the student and the digits teacher, seeded, in eval mode."""
    import torch

    from edgedistill.students import build_student, parse_student
    from edgedistill.tasks.task import load_recipe
    from edgedistill.teachers.builtin import build_resnet

    recipe = load_recipe("digits")
    torch.manual_seed(0)
    student = build_student(parse_student(STUDENT_SPEC), (1, 32, 32), len(recipe.labels))
    teacher = build_resnet(recipe.teacher, 1, len(recipe.labels))
    for module in (student, teacher):  # non-trivial batch-norm statistics, as after training
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
    return [("student " + STUDENT_SPEC, student.eval()), ("teacher digits", teacher.eval())]


def inputs():
    import torch

    from edgedistill.tasks.data import iter_batches, load_task_data
    from edgedistill.tasks.task import load_recipe

    data = load_task_data(load_recipe("digits"))
    real = torch.cat([x for x, _ in iter_batches(data.val, limit=128)])
    generator = torch.Generator().manual_seed(0)
    return torch.cat([real, torch.randn((128, *real.shape[1:]), generator=generator)])


def time_engine(runner, sample, runs: int) -> dict:
    """Batch-1 latency with CUDA events: warm-up >= 50 runs and >= 0.5 s, then `runs`."""
    import numpy as np
    import torch

    context = runner.engine.create_execution_context()
    x = torch.from_numpy(np.ascontiguousarray(sample)).cuda()
    y = torch.empty(tuple(runner.engine.get_tensor_shape("logits")), device="cuda")
    context.set_tensor_address("input", x.data_ptr())
    context.set_tensor_address("logits", y.data_ptr())
    stream = torch.cuda.Stream()
    started, warm = time.perf_counter(), 0
    while warm < 50 or time.perf_counter() - started < 0.5:
        context.execute_async_v3(stream.cuda_stream)
        warm += 1
    stream.synchronize()
    times = []
    for _ in range(runs):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record(stream)
        context.execute_async_v3(stream.cuda_stream)
        end.record(stream)
        end.synchronize()
        times.append(begin.elapsed_time(end))
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "runs": runs}


def onnxruntime_ms(path: Path, sample, runs: int) -> float:
    import numpy as np

    from edgedistill.ort import onnx_session

    session = onnx_session(path, threads=1)
    feed = {session.get_inputs()[0].name: sample}
    for _ in range(10):
        session.run(None, feed)
    times = []
    for _ in range(min(runs, 200)):
        begin = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - begin) * 1000)
    return float(np.percentile(times, 50))


def check_model(name, module, x, runs: int, scratch: Path) -> list[dict]:
    import numpy as np
    import torch

    from edgedistill.export import EXPORTERS
    from edgedistill.export.tensorrt import TensorRTRunner, build_engine
    from edgedistill.export.validate import onnx_predictions

    onnx_path = scratch / f"{name.split()[0]}.fp32.onnx"
    EXPORTERS.get("onnx").export(module, torch.zeros(1, *x.shape[1:]), onnx_path, "fp32")
    reference = onnx_predictions(onnx_path, x.numpy())
    ort_p50 = onnxruntime_ms(onnx_path, x[:1].numpy(), runs)
    rows = []
    for precision in ("fp32", "fp16", "int8"):
        row = {"model": name, "precision": precision, "onnxruntime_cpu_p50_ms": ort_p50}
        if precision == "int8":
            row["skipped"] = "needs the quantized (Q/DQ) ONNX, which arrives with the int8 issue"
            rows.append(row)
            continue
        engine_path = scratch / f"{name.split()[0]}.{precision}.engine"
        started = time.perf_counter()
        version = build_engine(onnx_path, engine_path, precision)
        row["build_s"] = round(time.perf_counter() - started, 2)
        row["tensorrt"] = version
        row["engine_bytes"] = engine_path.stat().st_size
        runner = TensorRTRunner(engine_path)
        logits = runner.predict(x.numpy())
        row["max_abs_diff"] = float(np.abs(logits - reference).max())
        row["argmax_agreement"] = float((logits.argmax(1) == reference.argmax(1)).mean())
        if precision == "fp32":
            row["ok"] = row["max_abs_diff"] <= FP32_TOLERANCE * max(1.0, np.abs(reference).max())
        else:
            row["ok"] = row["argmax_agreement"] >= FP16_MIN_AGREEMENT
        row.update(time_engine(runner, x[:1].numpy(), runs))
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import tensorrt
        import torch
    except ImportError as exc:
        return skip(f"{exc.name} is not installed here", args.json)
    if not torch.cuda.is_available():
        return skip("torch sees no CUDA GPU", args.json)
    started = time.perf_counter()
    x = inputs()
    rows = []
    with tempfile.TemporaryDirectory(prefix="trt-check-") as scratch:
        for name, module in models():
            rows.extend(check_model(name, module, x, args.runs, Path(scratch)))
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
            if "skipped" in row:
                print(f"{row['model']:<32} {row['precision']}  skipped: {row['skipped']}")
                continue
            print(
                f"{row['model']:<32} {row['precision']}  build {row['build_s']:>6.1f} s  "
                f"max|diff| {row['max_abs_diff']:.2e}  agreement {row['argmax_agreement']:.4f}  "
                f"p50 {row['p50_ms']:.4f} ms  p90 {row['p90_ms']:.4f} ms  "
                f"(onnxruntime CPU p50 {row['onnxruntime_cpu_p50_ms']:.3f} ms)  "
                f"{'ok' if row['ok'] else 'FAILED'}"
            )
        print(f"total {document['seconds']} s")
    return 0 if all(row.get("ok", True) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
