"""KD gain on digits: one small student trained with ce, kd, dkd and kd+fitnet, 5 seeds, at full
labels and at 10 % labels; teacher accuracy, mean +- std, retention, share of the teacher-student
gap closed ((method - ce) / (teacher - ce)), paired wins over ce, and the student's speed-up.

Run: .venv/bin/python benchmarks/kd_gain.py [--seeds 5] [--student mbv2:d=1,r=16,w=0.25]
Targets (issue 3): at 10 % labels KD closes >= 50 % of the gap and beats ce in >= 4 of 5 paired
seeds; at full labels the best method's retention is >= 0.97 for a student >= 10x faster.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

METHODS = {"ce": "ce", "kd": "kd", "dkd": "dkd", "kd+fitnet": "kd,fitnet"}
HINT = "features.2=layers.5"  # student stage 3 output (8x4x4) <- teacher last stage (128x8x8)


def run(student: str, losses: str, fraction: float, seed: int, scratch: Path) -> dict:
    from edgedistill.distill.plan import DistillOptions, plan_distill
    from edgedistill.distill.run import run_distill

    out = scratch / f"{losses.replace(',', '+')}-{fraction}-{seed}"
    options = DistillOptions(
        task="digits",
        student=student,
        losses=losses.split(","),
        layers=[HINT] if "fitnet" in losses else None,
        labels_fraction=fraction,
        seed=seed,
        out=out,
    )
    _, result = run_distill(plan_distill(options))
    return result.model_dump(mode="json")


def speedup(student: str) -> tuple[float, float]:
    """Measured p50 latency (ms) of teacher and student, ONNX on this host, 1 thread."""
    import torch

    from edgedistill.distill.teacher_training import load_teacher
    from edgedistill.export import EXPORTERS
    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.students import Candidate, build_student
    from edgedistill.tasks.data import load_task_data
    from edgedistill.tasks.task import load_recipe
    from edgedistill.teachers import prepare_teacher

    recipe = load_recipe("digits")
    data = load_task_data(recipe)
    teacher = load_teacher(prepare_teacher(recipe, data)).model
    model = build_student(Candidate.parse(student), data.input_shape, len(recipe.labels)).eval()
    example = torch.zeros((1, *data.input_shape))
    latencies = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, module in (("teacher", teacher), ("student", model)):
            artifact = EXPORTERS.get("onnx").export(
                module, example, Path(scratch) / f"{name}.onnx", "fp32"
            )
            latencies.append(measure_onnx(Path(artifact.path), BenchProtocol(threads=1)).p50)
    return latencies[0], latencies[1]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(accuracy, teacher, fractions, seeds, latency) -> None:
    teacher_accuracy = teacher["accuracy"]
    teacher_ms, student_ms = latency
    for fraction in fractions:
        baseline = accuracy[("ce", fraction)]
        ce = statistics.mean(baseline)
        print(f"\nlabels on {fraction:.0%} of the train split, {seeds} seeds:")
        header = ("method", "mean", "std", "retention", "gap closed", "beats ce")
        print("  {:<10} {:>7} {:>7} {:>9} {:>10} {:>8}".format(*header))
        for method in METHODS:
            values = accuracy[(method, fraction)]
            mean = statistics.mean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            closed = beats = ""
            if method != "ce":
                closed = f"{(mean - ce) / (teacher_accuracy - ce):.1%}"
                beats = f"{sum(v > c for v, c in zip(values, baseline, strict=True))}/{seeds}"
            row = (method, f"{mean:.4f}", f"{std:.4f}", f"{mean / teacher_accuracy:.4f}")
            print("  {:<10} {:>7} {:>7} {:>9} {:>10} {:>8}".format(*row, closed, beats))
    low, full = min(fractions), max(fractions)
    ce_low = statistics.mean(accuracy[("ce", low)])
    closed = (statistics.mean(accuracy[("kd", low)]) - ce_low) / (teacher_accuracy - ce_low)
    pairs = zip(accuracy[("kd", low)], accuracy[("ce", low)], strict=True)
    wins = sum(k > c for k, c in pairs)
    best_method = max(METHODS, key=lambda m: statistics.mean(accuracy[(m, full)]))
    best = statistics.mean(accuracy[(best_method, full)]) / teacher_accuracy
    faster = teacher_ms / student_ms
    print()
    print(
        f"target: labels {low:.0%}: KD closes {closed:.1%} of the gap (>= 50 %): "
        f"{verdict(closed >= 0.5)}"
    )
    print(
        f"target: labels {low:.0%}: KD beats ce in {wins}/{seeds} paired seeds (>= 4): "
        f"{verdict(wins >= 4)}"
    )
    print(
        f"target: labels {full:.0%}: best retention {best:.4f} ({best_method}) (>= 0.97) with a "
        f"{faster:.1f}x faster student (>= 10x): {verdict(best >= 0.97 and faster >= 10)}"
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--student", default="mbv2:d=1,r=16,w=0.25")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fractions", default="1.0,0.1")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fractions = [float(f) for f in args.fractions.split(",")]
    started = time.perf_counter()
    accuracy: dict[tuple[str, float], list[float]] = {}
    teacher: dict = {}
    student: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        for fraction in fractions:
            for seed in range(args.seeds):
                for method, losses in METHODS.items():
                    result = run(args.student, losses, fraction, seed, Path(scratch))
                    accuracy.setdefault((method, fraction), []).append(result["accuracy"])
                    teacher = result["teachers"][0] if result["teachers"] else teacher
                    student = {"params": result["params"], "macs": result["macs"]}
                    print(
                        f"  labels {fraction:>4.0%} seed {seed} {method:<10} "
                        f"acc {result['accuracy']:.4f} ({result['epochs_run']} epochs, "
                        f"{result['seconds']:.1f} s)",
                        flush=True,
                    )
    teacher_ms, student_ms = speedup(args.student)
    host = platform.processor() or platform.machine()
    print(f"\nhost: {host}, {os.cpu_count()} cores, torch threads {args.threads}")
    print(
        f"teacher: {teacher['params']:,} params, {teacher['macs']:,} MACs, "
        f"test accuracy {teacher['accuracy']:.4f}, p50 {teacher_ms:.4f} ms (onnxruntime, 1 thread)"
    )
    print(
        f"student {args.student}: {student['params']:,} params, {student['macs']:,} MACs, "
        f"p50 {student_ms:.4f} ms: {teacher_ms / student_ms:.1f}x faster than the teacher"
    )
    report(accuracy, teacher, fractions, args.seeds, (teacher_ms, student_ms))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
