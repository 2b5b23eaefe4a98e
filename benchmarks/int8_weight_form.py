"""Why the onnxruntime int8 ONNX stores uint8 weights: one QAT-free digits student, calibrated,
exported once as QDQ ONNX, then run with int8 weights (u8s8 kernels) and with the same levels
shifted to uint8 (u8u8, what `export` writes), side by side: argmax agreement with the
fake-quantized PyTorch student, and p50 latency (onnxruntime, 1 thread, batch 1, interleaved
rounds). On x86 CPUs without AVX-512 VNNI the u8s8 kernels add products in 16 bits and
saturate; the CPU's flags are printed.

Run: .venv/bin/python benchmarks/int8_weight_form.py [--spec SPEC] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import host_line  # noqa: E402


def to_int8_weights(path: Path, out: Path) -> None:
    """Undo the uint8 weight shift: the same model with int8 weights, zero point 0."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        stored = inits.get(node.input[0])
        if node.op_type != "DequantizeLinear" or stored is None or len(stored.dims) < 2:
            continue
        if stored.data_type != onnx.TensorProto.UINT8:
            continue
        values = numpy_helper.to_array(stored).astype(np.int16) - 128
        stored.CopyFrom(numpy_helper.from_array(values.astype(np.int8), stored.name))
        zero = inits[node.input[2]]
        zeros = numpy_helper.to_array(zero).astype(np.int16) - 128
        zero.CopyFrom(numpy_helper.from_array(zeros.astype(np.int8), zero.name))
    onnx.save(model, str(out))


def main() -> None:
    import onnxruntime as ort
    import torch

    from edgedistill.export import EXPORTERS
    from edgedistill.quant.prepare import calibrate, prepare
    from edgedistill.quant.scheme import QuantScheme
    from edgedistill.students import build_student, parse_student
    from edgedistill.tasks.data import iter_batches, load_task_data
    from edgedistill.tasks.task import load_recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="mbv2:d=1,r=16,w=0.5")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    print(host_line(), "| AVX-512 VNNI:", "avx512_vnni" in flags or "avx_vnni" in flags)
    data = load_task_data(load_recipe("digits"))
    torch.manual_seed(0)
    shape = data.input_shape
    model = build_student(parse_student(args.spec), shape, 10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model.train()
    for _ in range(2):
        for x, y in iter_batches(data.train, batch_size=32):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    quantized = prepare(model.eval(), QuantScheme())
    calibrate(quantized, [x for x, _ in iter_batches(data.train, batch_size=128, limit=256)])
    x = torch.cat([x for x, _ in iter_batches(data.test)])
    with torch.no_grad():
        expected = quantized(x).numpy().argmax(1)
    with tempfile.TemporaryDirectory() as scratch:
        uint8 = Path(scratch) / "uint8.onnx"
        EXPORTERS.get("onnx").export(quantized, torch.zeros(1, *shape), uint8, precision="int8")
        int8 = Path(scratch) / "int8.onnx"
        to_int8_weights(uint8, int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in (("int8 weights (u8s8)", int8), ("uint8 weights (u8u8)", uint8))
        }
        batch = x.numpy()
        times: dict[str, list[float]] = {name: [] for name in sessions}
        agreement = {}
        for name, session in sessions.items():
            logits = np.concatenate(
                [session.run(None, {"input": batch[i : i + 1]})[0] for i in range(len(batch))]
            )
            agreement[name] = float((logits.argmax(1) == expected).mean())
        for _ in range(args.rounds):
            for name, session in sessions.items():
                samples = []
                for i in range(300):
                    started = time.perf_counter()
                    session.run(None, {"input": batch[i % len(batch) : i % len(batch) + 1]})
                    samples.append((time.perf_counter() - started) * 1000)
                times[name].append(statistics.median(samples))
    print(f"{args.spec}, digits test split ({len(batch)} samples), {args.rounds} rounds:")
    for name in sessions:
        print(
            f"  {name}: argmax agreement {agreement[name]:.4f}, "
            f"p50 {statistics.median(times[name]):.4f} ms"
        )
    names = list(sessions)
    ratio = statistics.median(times[names[1]]) / statistics.median(times[names[0]])
    print(f"  u8u8 / u8s8 latency: {ratio:.2f}x")


if __name__ == "__main__":
    main()
