"""Teacher-output cache speed-up: distillation epoch time with the teacher run online on every
batch vs read from the memory-mapped cache, same student, same process, alternating runs; and
whether cached logits equal the online ones (max abs difference over the whole train split).

Run: .venv/bin/python benchmarks/cache_speedup.py [--student mbv2:d=1,r=24,w=0.5] [--epochs 2]
Target (issue 3): >= 3x faster epochs with the cache for a teacher >= 10x the student's MACs;
cached logits equal online logits to 1e-6.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def epoch_seconds(recipe, data, teacher_outputs, student_spec: str, epochs: int) -> float:
    import torch

    from edgedistill.distill.objective import build_objective, build_terms
    from edgedistill.distill.trainer import train
    from edgedistill.students import Candidate, build_student

    torch.manual_seed(0)
    student = build_student(Candidate.parse(student_spec), data.input_shape, len(recipe.labels))
    objective = build_objective(build_terms(recipe.distill.losses), student, None, data.train.x[:2])
    spec = recipe.distill.train.model_copy(update={"epochs": epochs, "patience": None})
    result = train(student, data.train, data.val, spec, objective, teacher_outputs, seed=0)
    objective.model.release()
    return result.seconds / result.epochs_run


def main() -> None:
    import torch

    from edgedistill.distill.teacher_training import load_teacher
    from edgedistill.latency.costs import model_cost
    from edgedistill.students import Candidate, build_student
    from edgedistill.tasks.data import load_task_data
    from edgedistill.tasks.task import load_recipe
    from edgedistill.teachers import prepare_teacher
    from edgedistill.teachers.cache import open_or_build
    from edgedistill.teachers.outputs import OnlineOutputs, TeacherRunner

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--student", default="mbv2:d=1,r=24,w=0.5")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = load_recipe("digits")
    data = load_task_data(recipe)
    teacher = load_teacher(prepare_teacher(recipe, data)).model
    student = build_student(Candidate.parse(args.student), data.input_shape, len(recipe.labels))
    teacher_macs = model_cost(teacher, data.input_shape).macs
    student_macs = model_cost(student, data.input_shape).macs
    runner = TeacherRunner([teacher], [], torch.device("cpu"))
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        cached = open_or_build(runner, data.train, "bench", root=Path(scratch))
        build_seconds = time.perf_counter() - started
        online = OnlineOutputs(runner, "benchmark")
        times: dict[str, list[float]] = {"online": [], "cached": []}
        for _ in range(args.rounds):
            for name, outputs in (("online", online), ("cached", cached)):
                times[name].append(epoch_seconds(recipe, data, outputs, args.student, args.epochs))
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
        difference = 0.0
        for start in range(0, len(order), 64):  # online in training-sized random batches
            index = order[start : start + 64]
            fresh = runner(data.train.x[index])[0][0]
            stored = cached.get(index)[0][0]
            difference = max(difference, (fresh - stored).abs().max().item())
    online_s, cached_s = statistics.median(times["online"]), statistics.median(times["cached"])
    ratio = online_s / cached_s
    host = platform.processor() or platform.machine()
    print(f"host: {host}, {os.cpu_count()} cores, torch threads {args.threads}")
    print(
        f"teacher {teacher_macs:,} MACs, student {args.student} {student_macs:,} MACs "
        f"(teacher/student {teacher_macs / student_macs:.0f}x)"
    )
    print(f"train split {len(data.train)} samples; cache built once in {build_seconds:.2f} s")
    print(f"epoch time, median of {args.rounds} runs x {args.epochs} epochs (alternating):")
    print(f"  online teacher {online_s:.3f} s  {[round(t, 3) for t in times['online']]}")
    print(f"  cached outputs {cached_s:.3f} s  {[round(t, 3) for t in times['cached']]}")
    print(f"speed-up {ratio:.1f}x (target >= 3x): {'met' if ratio >= 3 else 'MISSED'}")
    print(
        f"max |cached - online| logit difference {difference:.2e} (target <= 1e-6): "
        f"{'met' if difference <= 1e-6 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
