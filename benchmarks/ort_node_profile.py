"""Where onnxruntime spends a candidate's time on this host, per node of its optimised graph.

The latency model's features (channel blocks, narrow-input convolutions, layout changes, gated
bytes, weight bytes) came from reading these profiles: run it on two candidates that differ in
one knob to see which nodes account for the difference.

Run: .venv/bin/python benchmarks/ort_node_profile.py [SPEC ...] [--runs 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import INPUT_SHAPE, NUM_CLASSES, host_line, profile_events  # noqa: E402

DEFAULT_SPECS = ("mbv2:d=1,e=6,k=3,r=32,se=0,w=1", "mbv2:d=1,e=6,k=3,r=32,se=0,w=0.75")


def node_times(spec: str, runs: int) -> list[tuple[str, float, list, list]]:
    """(op, median microseconds, input shapes, output shapes) per node, in execution order."""
    import numpy as np

    from edgedistill.fit.probe import export_candidate
    from edgedistill.students import parse_student

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "candidate.onnx"
        export_candidate(parse_student(spec), INPUT_SHAPE, NUM_CLASSES, path)
        events = profile_events(path, runs)
    durations: dict[str, list[float]] = defaultdict(list)
    details: dict[str, tuple[str, list, list]] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            durations[event["name"]].append(event["dur"])
            args = event["args"]
            shapes = [
                [next(iter(item.values())) for item in args.get(key, [])]
                for key in ("input_type_shape", "output_type_shape")
            ]
            details[event["name"]] = (args["op_name"], *shapes)
    return [
        (details[name][0], float(np.median(times)), details[name][1], details[name][2])
        for name, times in durations.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=list(DEFAULT_SPECS))
    parser.add_argument("--runs", type=int, default=400, help="profiled runs per candidate")
    args = parser.parse_args()
    print(f"host: {host_line()}")
    for spec in args.specs:
        nodes = node_times(spec, args.runs)
        by_op: dict[str, float] = defaultdict(float)
        for op, micros, _, _ in nodes:
            by_op[op] += micros
        total = sum(by_op.values())
        print(f"{spec}: {len(nodes)} nodes, {total:.1f} us in kernels (median per node)")
        for op, micros in sorted(by_op.items(), key=lambda item: -item[1]):
            print(f"  {op:14s} {micros:7.1f} us  {micros / total:5.1%}")
        for op, micros, inputs, outputs in nodes:
            print(f"    {op:14s} {micros:6.1f} us  in {inputs}  out {outputs}")


if __name__ == "__main__":
    main()
