"""Text distillation on the built-in fortunes task: the transformer teacher trained here, then
students trained from scratch (ce), with logit KD (kd) and with KD plus TinyBERT-style hidden-state
matching through a learned projection (kd+hidden), over several seeds; test accuracy (mean +-
std), retention (student / teacher accuracy) and the onnxruntime latency of each ONNX file at
batch 1 and the task's sequence length, measured side by side on this host (1 thread).

Run: .venv/bin/python benchmarks/text_kd.py [--seeds 3] [--students tfm:l=2,h=128 tfm:l=1,h=64]
Target (issue 13, classification): retention >= 0.97 at >= 4x lower latency than the teacher.
Sentence-embedding teachers are not built yet, so their half of the benchmark is not here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import host_line  # noqa: E402

TASK = "fortunes"
METHODS = {"ce": ["ce"], "kd": ["kd"], "kd+hidden": ["kd", "hidden-mse"]}


def hidden_pairs(student: str, teacher_layers: int) -> list[str]:
    """Each student layer's output against the teacher layer it follows (spread evenly)."""
    from edgedistill.students.candidate import Candidate
    from edgedistill.students.transformer import spread_layers

    layers = int(Candidate.parse(student).knobs["l"])
    return [
        f"layers.{index}=layers.{teacher}"
        for index, teacher in enumerate(spread_layers(layers, teacher_layers))
    ]


def distill(student: str, losses: list[str], seed: int, scratch: Path, layers: list[str]) -> dict:
    from edgedistill.distill.plan import DistillOptions, plan_distill
    from edgedistill.distill.run import run_distill

    out = scratch / f"{student.replace(':', '-').replace(',', '_')}-{'+'.join(losses)}-{seed}"
    options = DistillOptions(
        task=TASK,
        student=student,
        losses=losses,
        layers=layers if "hidden-mse" in losses else None,
        seed=seed,
        out=out,
    )
    _, result = run_distill(plan_distill(options))
    return result.model_dump(mode="json")


def latencies(students: list[str]) -> tuple[dict[str, float], dict[str, int], float, int]:
    """p50 ms of the teacher's and each student's ONNX (random student weights: latency does
    not depend on them), measured one after the other; and the parameter counts."""
    from edgedistill.distill.teacher_training import load_teacher
    from edgedistill.export import EXPORTERS
    from edgedistill.inputs import example_input
    from edgedistill.lab.host_bench import BenchProtocol, measure_onnx
    from edgedistill.students import build_student, parse_student, with_task_knobs
    from edgedistill.students.candidate import Candidate
    from edgedistill.tasks.task import load_task
    from edgedistill.teachers import feed_teacher

    task = load_task(TASK)
    teacher = load_teacher(feed_teacher(task).teacher)
    shape, classes = task.data.input_shape, len(task.recipe.labels)
    modules = {"teacher": teacher.model}
    for spec in students:
        candidate = parse_student(with_task_knobs(Candidate.parse(spec), task.data.vocabulary).spec)
        modules[spec] = build_student(candidate, shape, classes).eval()
    measured, params = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, module in modules.items():
            path = Path(scratch) / f"{len(measured)}.onnx"
            EXPORTERS.get("onnx").export(module, example_input(shape), path, "fp32")
            measured[name] = measure_onnx(path, BenchProtocol(threads=1)).p50
            params[name] = sum(p.numel() for p in module.parameters())
    return measured, params, teacher.test_accuracy, shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--students", nargs="+", default=["tfm:l=2,h=128", "tfm:l=1,h=64"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(host_line())
    ms, params, teacher_accuracy, length = latencies(args.students)
    teacher_layers = 4  # fortunes.yaml: tfm:l=4,h=256
    print(
        f"teacher tfm:l=4,h=256 ({params['teacher']:,} params): test accuracy "
        f"{teacher_accuracy:.4f}, onnxruntime p50 {ms['teacher']:.3f} ms at batch 1, "
        f"{length} tokens"
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for student in args.students:
            pairs = hidden_pairs(student, teacher_layers)
            for method, losses in METHODS.items():
                accuracy = [
                    distill(student, losses, seed, Path(scratch), pairs)["accuracy"]
                    for seed in range(args.seeds)
                ]
                rows.append((student, method, accuracy))
                print(
                    f"  {student} {method}: {', '.join(f'{a:.4f}' for a in accuracy)}", flush=True
                )
    print(f"\n{args.seeds} seeds; retention = mean accuracy / teacher accuracy")
    header = ("student", "params", "method", "mean", "std", "retention", "p50 ms", "faster")
    print("{:<16} {:>9} {:<10} {:>7} {:>7} {:>9} {:>7} {:>7}".format(*header))
    met = []
    for student, method, accuracy in rows:
        mean = statistics.mean(accuracy)
        std = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
        retention = mean / teacher_accuracy
        faster = ms["teacher"] / ms[student]
        print(
            f"{student:<16} {params[student]:>9,} {method:<10} {mean:>7.4f} {std:>7.4f} "
            f"{retention:>9.3f} {ms[student]:>7.3f} {faster:>6.1f}x"
        )
        if method != "ce":
            met.append(retention >= 0.97 and faster >= 4)
    print(
        "target (retention >= 0.97 at >= 4x lower latency, a distilled student): "
        + ("met" if any(met) else "MISSED")
    )


if __name__ == "__main__":
    main()
