"""Regression distillation on the built-in digits-pose task: the teacher, a student distilled
from the teacher's outputs (`mse`), and the same student trained on the targets alone (`ce`,
squared error on the targets), with MAE, RMSE and R² on the test split, then the distilled
student exported to ONNX and scored there.

Run: .venv/bin/python benchmarks/regression.py [--students SPEC;SPEC] [--seeds 0,1]
     [--epochs N] [--task digits-pose]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import host_line  # noqa: E402

DEFAULT_STUDENTS = "mbv2:d=1,e=3,k=3,r=16,se=0,w=0.5;mbv2:d=1,e=6,k=3,r=32,se=0,w=1"


def train(task: str, spec: str, loss: str, seed: int, epochs: int | None, scratch: Path):
    from edgedistill.distill.plan import DistillOptions, plan_distill
    from edgedistill.distill.run import run_distill

    out = scratch / f"{spec.replace(':', '_')}-{loss}-{seed}"
    options = DistillOptions(
        task=task, student=spec, losses=[loss], seed=seed, epochs=epochs, out=out
    )
    plan = plan_distill(options)
    model, result = run_distill(plan)
    return plan, model, result


def onnx_score(model, data, folder: Path) -> float:
    import torch

    from edgedistill.export.chain import export_chain

    example = torch.zeros((1, *data.input_shape))
    (artifact,) = export_chain(["onnx"], "fp32", model, example, folder, data)
    return artifact.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits-pose")
    parser.add_argument("--students", default=DEFAULT_STUDENTS)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    from edgedistill.tasks.evaluate import metrics

    print(host_line())
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgedistill-regression-") as scratch:
        folder = Path(scratch)
        teacher_figures = None
        for spec in args.students.split(";"):
            per_loss: dict[str, list[dict]] = {"mse": [], "ce": []}
            exported = []
            for seed in seeds:
                for loss in per_loss:
                    plan, model, result = train(args.task, spec, loss, seed, args.epochs, folder)
                    data = plan.task.data
                    per_loss[loss].append(metrics(model, data.test))
                    if teacher_figures is None and plan.loaded_teacher is not None:
                        teacher_figures = metrics(plan.loaded_teacher.model, data.test)
                    if loss == "mse":
                        exported.append(onnx_score(model, data, folder / f"onnx-{seed}"))
            rows.append((spec, per_loss, exported))
        if teacher_figures is None:
            from edgedistill.distill.teacher_training import load_teacher
            from edgedistill.tasks.task import load_task
            from edgedistill.teachers import feed_teacher

            fed = feed_teacher(load_task(args.task))
            teacher = load_teacher(fed.teacher, 0)
            teacher_figures = metrics(teacher.model, fed.task.data.test)

    def mean(figures: list[dict], name: str) -> float:
        return statistics.mean(f[name] for f in figures)

    t = teacher_figures
    print(f"task {args.task}, seeds {seeds}; test split; R² averaged over the outputs")
    print("| model | MAE | RMSE | R² | retention (R² / teacher R²) | R² of the ONNX export |")
    print("|---|---|---|---|---|---|")
    print(f"| teacher | {t['mae']:.4f} | {t['rmse']:.4f} | {t['r2']:.4f} | 1 | |")
    for spec, per_loss, exported in rows:
        for loss, label in (("mse", "distilled (mse)"), ("ce", "targets only")):
            figures = per_loss[loss]
            onnx = f"{statistics.mean(exported):.4f}" if loss == "mse" else ""
            print(
                f"| `{spec}` {label} | {mean(figures, 'mae'):.4f} | {mean(figures, 'rmse'):.4f} "
                f"| {mean(figures, 'r2'):.4f} | {mean(figures, 'r2') / t['r2']:.3f} | {onnx} |"
            )


if __name__ == "__main__":
    main()
