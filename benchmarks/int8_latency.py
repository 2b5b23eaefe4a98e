"""int8 against fp32 on this host, and how well each precision's latency model predicts it.

Calibrates the host-cpu latency model at fp32 and at int8 (as `edgedistill calibrate --precision
P` does: N candidates spread over the space, exported at that precision, int8 as QDQ ONNX), into
a scratch data directory (your stored calibrations are not touched), then times M other
candidates at both precisions, interleaved, at 1 and 2 onnxruntime threads. Prints per student:
fp32 and int8 p50 at 1 and 2 threads, the int8/fp32 ratio (above 1: int8 is slower), the measured
p90 at 1 thread and each precision's prediction of it; then the prediction error on these
held-out candidates (median and p90 of |predicted - measured| / measured) per precision, and how
often the models call the faster precision right.

`--nodes SPEC ...` instead prints, for those students, onnxruntime's kernel time per op type of
the optimised fp32 and int8 graphs side by side (where the int8 features come from).

Run: .venv/bin/python benchmarks/int8_latency.py [--calibrate 24] [--held-out 24] [--seed 0]
     .venv/bin/python benchmarks/int8_latency.py --nodes mbv2:d=2,e=6,k=3,r=32,se=1,w=1
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import INPUT_SHAPE, NUM_CLASSES, host_line, profile_events  # noqa: E402

PRECISIONS = ("fp32", "int8")
THREADS = (1, 2)


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def kernel_times(path: Path, runs: int = 300) -> dict[str, tuple[int, float]]:
    """(nodes, summed median microseconds) per op type of onnxruntime's optimised graph."""
    import numpy as np

    events = profile_events(path, runs)
    durations: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            durations.setdefault(event["name"], []).append(event["dur"])
            ops[event["name"]] = event["args"]["op_name"]
    by_op: dict[str, tuple[int, float]] = {}
    for name, times in durations.items():
        count, micros = by_op.get(ops[name], (0, 0.0))
        by_op[ops[name]] = (count + 1, micros + float(np.median(times)))
    return by_op


def print_nodes(specs: list[str]) -> None:
    from edgedistill.fit.probe import export_candidate
    from edgedistill.students import parse_student

    with tempfile.TemporaryDirectory() as scratch:
        for spec in specs:
            print(f"{spec}: kernel time per op type (median of 300 runs, 1 thread)")
            for precision in PRECISIONS:
                path = Path(scratch) / f"candidate.{precision}.onnx"
                export_candidate(parse_student(spec), INPUT_SHAPE, NUM_CLASSES, path, precision)
                by_op = kernel_times(path)
                total = sum(micros for _, micros in by_op.values())
                print(f"  {precision}: {total:.0f} us in {sum(n for n, _ in by_op.values())} nodes")
                for op, (count, micros) in sorted(by_op.items(), key=lambda item: -item[1][1]):
                    print(f"    {op:18s} x{count:<3d} {micros:7.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", type=int, default=24, help="calibration measurements")
    parser.add_argument("--held-out", type=int, default=24, help="candidates timed and predicted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nodes", nargs="+", metavar="SPEC", help="per-op kernel times instead")
    args = parser.parse_args()
    if args.nodes:
        print(f"host: {host_line()}")
        print_nodes(args.nodes)
        return
    os.environ["EDGEDISTILL_DATA_DIR"] = tempfile.mkdtemp(prefix="edgedistill-int8-bench-")

    import onnxruntime

    from edgedistill.fit.calibrate import calibrate_on_host, spread
    from edgedistill.fit.probe import export_candidate
    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import candidate_cost

    print(f"host: {host_line()}; onnxruntime {onnxruntime.__version__}, batch 1, input 32x32x1")
    started = time.perf_counter()
    profile = load_profile("host-cpu")
    space = enumerate_space(INPUT_SHAPE)
    models = {}
    for precision in PRECISIONS:
        models[precision] = calibrate_on_host(
            profile, space, INPUT_SHAPE, NUM_CLASSES, args.calibrate, 1, precision=precision
        )
        print(
            f"calibrated {precision} on {args.calibrate} candidates: leave-one-out error "
            f"{models[precision].fit_error:.1%}, channel block {models[precision].channel_block}"
        )
    costs = {c.spec: candidate_cost(c.spec, INPUT_SHAPE, NUM_CLASSES) for c in space}
    calibration_set = set(spread(space, {k: v.macs for k, v in costs.items()}, args.calibrate))
    rest = [c for c in space if c not in calibration_set]
    held_out = sorted(
        random.Random(args.seed).sample(rest, args.held_out), key=lambda c: costs[c.spec].macs
    )

    header = (
        f"{'student':36s} {'MMACs':>6s} | {'p50 1 thread':^21s} | {'p50 2 threads':^21s} | "
        f"{'p90 1 thread: measured / predicted':^40s}"
    )
    print(header)
    print(
        f"{'':36s} {'':6s} | {'fp32':>6s} {'int8':>6s} {'ratio':>6s} | {'fp32':>6s} {'int8':>6s} "
        f"{'ratio':>6s} | {'fp32':>6s} {'pred':>6s} {'int8':>6s} {'pred':>6s} {'faster':>10s}"
    )
    errors: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    right_call = 0
    with tempfile.TemporaryDirectory() as scratch:
        for candidate in held_out:
            p50: dict[tuple[str, int], float] = {}
            p90: dict[str, float] = {}
            paths = {}
            for precision in PRECISIONS:
                paths[precision] = Path(scratch) / f"candidate.{precision}.onnx"
                export_candidate(candidate, INPUT_SHAPE, NUM_CLASSES, paths[precision], precision)
            for threads in THREADS:
                for precision in PRECISIONS:  # side by side: same minute, same load
                    result = measure_onnx(paths[precision], BenchProtocol(threads=threads))
                    p50[precision, threads] = result.p50
                    if threads == 1:
                        p90[precision] = result.p90 or result.p50
            cost = costs[candidate.spec]
            predicted = {p: models[p].predict(cost) for p in PRECISIONS}
            for precision in PRECISIONS:
                errors[precision].append(
                    abs(predicted[precision] - p90[precision]) / p90[precision]
                )
            measured_faster = min(PRECISIONS, key=lambda p: p90[p])
            predicted_faster = min(PRECISIONS, key=lambda p: predicted[p])
            right_call += measured_faster == predicted_faster
            call = measured_faster + ("" if measured_faster == predicted_faster else " (miss)")
            ratios = [p50["int8", t] / p50["fp32", t] for t in THREADS]
            print(
                f"{candidate.spec:36s} {cost.macs / 1e6:6.2f} | "
                f"{p50['fp32', 1]:6.3f} {p50['int8', 1]:6.3f} {ratios[0]:6.2f} | "
                f"{p50['fp32', 2]:6.3f} {p50['int8', 2]:6.3f} {ratios[1]:6.2f} | "
                f"{p90['fp32']:6.3f} {predicted['fp32']:6.3f} {p90['int8']:6.3f} "
                f"{predicted['int8']:6.3f} {call:>10s}"
            )
    print(f"prediction error of p90 on {len(held_out)} held-out candidates (1 thread):")
    for precision in PRECISIONS:
        values = errors[precision]
        print(
            f"  {precision}: median {percentile(values, 50):.1%}, "
            f"p90 {percentile(values, 90):.1%}, max {max(values):.1%}"
        )
    print(f"faster precision called right for {right_call} of {len(held_out)} candidates")
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
