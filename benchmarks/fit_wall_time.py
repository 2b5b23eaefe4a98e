"""Measure `fit` on the digits task for host-cpu: wall time per stage, teacher / student latency.

Run: .venv/bin/python benchmarks/fit_wall_time.py [--budget 0.15ms] [--fresh]
`--fresh` uses empty cache and data directories, as a first run from a new clone would
(teacher trained, host calibrated); without it the user's caches are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", default="0.15ms")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ)
        if args.fresh:
            env["EDGEDISTILL_CACHE_DIR"] = f"{scratch}/cache"
            env["EDGEDISTILL_DATA_DIR"] = f"{scratch}/data"
        out = Path(scratch) / "run"
        started = time.perf_counter()
        command = [sys.executable, "-m", "edgedistill", "fit", "--device", "host-cpu"]
        command += ["--budget", args.budget, "--out", str(out), "--json"]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode not in (0, 1):
            sys.exit(result.stderr)
        summary = json.loads(result.stdout)
    student, teacher, latency = summary["student"], summary["teacher"], summary["latency_ms"]
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(
        f"fit wall time: {wall:.1f} s (fresh caches: {args.fresh}); stages: {summary['stages_s']}"
    )
    print(f"budget {summary['budget_ms']} ms, fits: {summary['fits_budget']}")
    print(f"student {student['spec']}: {student['params']:,} params, {student['macs']:,} MACs")
    print(
        f"latency p90: student {latency['p90']:.4f} ms (predicted {latency['predicted']:.4f}),"
        f" teacher {teacher['latency_ms']['p90']:.4f} ms;"
        f" teacher/student = {teacher['latency_ms']['p90'] / latency['p90']:.2f}x"
    )
    print(
        f"accuracy: teacher {teacher['accuracy']:.4f}, student deployed {student['accuracy']:.4f},"
        f" retention {summary['retention']:.4f}"
    )


if __name__ == "__main__":
    main()
