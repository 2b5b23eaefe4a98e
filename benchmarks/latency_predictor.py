"""How well the calibrated latency model predicts host-cpu latency, against a FLOPs-linear fit.

Calibrates on N candidates spread over the space (as `edgedistill calibrate` does), evaluates on
M other random candidates, and prints the share of predictions within +-10 % and +-20 % of the
measured p90, Spearman's rho, the same for a MACs-only linear fit on the same data, and an A/A
figure (one model timed against itself) that shows the measurement noise floor.

Run: .venv/bin/python benchmarks/latency_predictor.py [--calibrate 30] [--evaluate 40]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import INPUT_SHAPE, NUM_CLASSES, host_line, measure_p90  # noqa: E402


def within(predicted: list[float], measured: list[float], tolerance: float) -> float:
    hits = sum(abs(p - m) / m <= tolerance for p, m in zip(predicted, measured, strict=True))
    return hits / len(measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", type=int, default=30, help="calibration measurements")
    parser.add_argument("--evaluate", type=int, default=40, help="held-out candidates")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from scipy.stats import spearmanr

    from edgedistill.fit.calibrate import spread
    from edgedistill.latency import calibration
    from edgedistill.latency.model import LatencyModel
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import candidate_cost

    print(f"host: {host_line()}")
    started = time.perf_counter()
    space = enumerate_space(INPUT_SHAPE)
    costs = {c.spec: candidate_cost(c.spec, INPUT_SHAPE, NUM_CLASSES) for c in space}
    calibration_set = spread(space, {k: v.macs for k, v in costs.items()}, args.calibrate)
    rest = [c for c in space if c not in set(calibration_set)]
    evaluation_set = random.Random(args.seed).sample(rest, args.evaluate)

    measurements = []
    for index, candidate in enumerate(calibration_set, 1):
        p90 = measure_p90(candidate.spec)
        measurements.append(
            calibration.measurement(candidate.spec, costs[candidate.spec], p90, p90)
        )
        print(
            f"  calibrate {index}/{len(calibration_set)} {candidate.spec} p90 {p90:.4f} ms",
            file=sys.stderr,
        )
    coefficients, loo_error, block = calibration.fit(measurements)
    model = LatencyModel(load_profile("host-cpu"), "fp32", coefficients, loo_error, {}, block)

    # MACs-only baseline on the same calibration data: ms = a + b * MACs.
    flops_rows = [[1.0, float(costs[m.spec].macs)] for m in measurements]
    flops_coefficients = calibration._solve(flops_rows, [m.p90_ms for m in measurements])

    measured, ours, flops = [], [], []
    for index, candidate in enumerate(evaluation_set, 1):
        p90 = measure_p90(candidate.spec)
        measured.append(p90)
        ours.append(model.predict(costs[candidate.spec]))
        flops.append(flops_coefficients[0] + flops_coefficients[1] * costs[candidate.spec].macs)
        print(
            f"  evaluate {index}/{len(evaluation_set)} {candidate.spec} p90 {p90:.4f} ms",
            file=sys.stderr,
        )

    aa_specs = [c.spec for c in random.Random(args.seed + 1).sample(rest, 5)]
    aa = []
    for spec in aa_specs:
        first = measure_p90.__wrapped__(spec)
        second = measure_p90.__wrapped__(spec)
        aa.append(abs(first - second) / first)

    print(
        f"space: {len(space)} candidates; measured p90 of the evaluation set "
        f"{min(measured):.4f}-{max(measured):.4f} ms"
    )
    print(
        f"calibration: {len(measurements)} measurements, leave-one-out error {loo_error:.1%},"
        f" channel block {block}"
    )
    print(f"evaluation: {len(evaluation_set)} other random candidates")
    for name, predicted in (("latency model", ours), ("FLOPs-linear ", flops)):
        rho = spearmanr(predicted, measured).statistic
        print(
            f"  {name}: within 10 % {within(predicted, measured, 0.10):.0%}, "
            f"within 20 % {within(predicted, measured, 0.20):.0%}, Spearman rho {rho:.3f}"
        )
    worst = sorted(
        zip(evaluation_set, ours, measured, strict=True),
        key=lambda row: -abs(row[1] - row[2]) / row[2],
    )[:5]
    print("largest latency-model errors:")
    for candidate, predicted, actual in worst:
        print(
            f"  {candidate.spec}: predicted {predicted:.4f} ms, measured {actual:.4f} ms "
            f"({(predicted - actual) / actual:+.1%})"
        )
    aa.sort()
    print(
        f"A/A (same model timed twice, {len(aa)} models): median difference {aa[len(aa) // 2]:.1%},"
        f" max {aa[-1]:.1%}"
    )
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
