"""Budget compliance on host-cpu: is the student `fit` would choose really within the budget?

For each budget: the candidate the calibrated latency model picks (most MACs predicted to fit,
with the safety margin) is exported with random weights (weights do not change latency) and
timed; it complies when its measured p90 is within the budget. The largest candidate that truly
fits is found by measuring candidates in descending MAC order (those predicted within 1.5x the
budget) until one fits; the chosen one should have at least 90 % of its MACs.

The students take 3x128x128 images by default (resolutions 64, 96, 128), so that the space spans
about 0.1-7 ms on one core and every budget of 0.2-5 ms is binding; the host is calibrated afresh
for that input (in a temporary data directory: the user's own calibration is left alone).

Run: .venv/bin/python benchmarks/budget.py [--budgets 0.2,0.3,...] [--input 3x128x128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import NUM_CLASSES, host_line, measure_p90  # noqa: E402

DEFAULT_BUDGETS = "0.2,0.3,0.5,0.7,1,1.5,2,3,4,5"
MAX_SEARCH = 10  # measurements per budget when looking for the largest truly fitting candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default=DEFAULT_BUDGETS, help="comma-separated, in ms")
    parser.add_argument("--input", default="3x128x128", help="student input shape, CxHxW")
    parser.add_argument("--samples", type=int, default=24, help="calibration measurements")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.input.split("x"))
    os.environ["EDGEDISTILL_DATA_DIR"] = tempfile.mkdtemp(prefix="edgedistill-budget-")

    from edgedistill.latency.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import pick, score

    print(f"host: {host_line()}")
    started = time.perf_counter()
    profile = load_profile("host-cpu")
    space = enumerate_space(shape)
    model = calibrate_on_host(profile, space, shape, NUM_CLASSES, args.samples)
    print(
        f"input {args.input}: {len(space)} candidates; latency model calibrated on "
        f"{args.samples}, leave-one-out error {model.fit_error:.1%}, margin {model.margin():.0%}"
    )
    rows = []
    for budget in (float(b) for b in args.budgets.split(",")):
        scored = score(space, model, shape, NUM_CLASSES, budget)
        chosen = pick(scored)
        if chosen is None:
            print(f"budget {budget:g} ms: no candidate predicted to fit")
            continue
        chosen_p90 = measure_p90(chosen.candidate.spec, 1, shape)
        binding = any(not s.fits for s in scored)
        best = None
        tried = 0
        for item in scored:  # most MACs first
            if item.predicted_ms > 1.5 * budget:
                continue
            if tried >= MAX_SEARCH:
                break
            tried += 1
            if measure_p90(item.candidate.spec, 1, shape) <= budget:
                best = item
                break
        ratio = chosen.macs / best.macs if best is not None else float("nan")
        rows.append((budget, chosen, chosen_p90, best, ratio, binding))
        print(
            f"budget {budget:g} ms: chose {chosen.candidate.spec} ({chosen.macs / 1e6:.2f}M MACs,"
            f" predicted {chosen.predicted_ms:.4f}, measured p90 {chosen_p90:.4f} ms)"
            f" -> {'complies' if chosen_p90 <= budget else 'OVER BUDGET'};"
            f" largest truly fitting {best.candidate.spec if best else '?'}"
            f" -> MACs ratio {ratio:.2f}"
            f"{'' if binding else ' (budget not binding: every candidate fits)'}",
            flush=True,
        )
    compliant = sum(1 for r in rows if r[2] <= r[0])
    binding_rows = [r for r in rows if r[5]]
    in_range = [r for r in rows if 0.2 <= r[0] <= 5]
    print(f"compliance: {compliant}/{len(rows)} budgets ({compliant / len(rows):.0%})")
    good = sum(1 for r in rows if r[4] >= 0.9)
    print(f"chosen MACs >= 90 % of the largest truly fitting: {good}/{len(rows)}")
    print(
        f"binding budgets (some candidate does not fit): {len(binding_rows)}; "
        f"budgets in 0.2-5 ms: {len(in_range)}"
    )
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
