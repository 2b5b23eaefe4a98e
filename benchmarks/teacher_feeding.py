"""The crippled-teacher case of issue 12, rebuilt: a teacher trained by its owner on pixels in
[0, 1], given to `fit` three ways — fed the data's mean/std (the old default), detected, and
declared — with the teacher's and the deployed student's test accuracy and the flags each run
raised.

The image folder is the example's coloured shapes (examples/byo/make_shapes.py) and the
teacher is a small ResNet-style CNN written here, trained on [0, 1] pixels as a torchvision
`ToTensor()` pipeline would feed it; "owner's accuracy" is its accuracy on the test split fed
that way.

Run: .venv/bin/python benchmarks/teacher_feeding.py [--per-class 120] [--size 24]
     [--budget 0.3ms] [--epochs 10] [--teacher-epochs 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import host_line  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEACHER = """
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x):
        return (self.body(x) + self.skip(x)).relu()


def build(num_classes, in_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )
"""


def train_teacher(data: str, folder: Path, epochs: int) -> float:
    """Train the owner's teacher on [0, 1] pixels; its test accuracy fed that way."""
    import torch
    from safetensors.torch import save_file

    from edgedistill.tasks.conventions import preset_preprocessing
    from edgedistill.tasks.data import all_labels
    from edgedistill.tasks.evaluate import accuracy
    from edgedistill.tasks.task import load_task

    (folder / "teacher.py").write_text(TEACHER)
    namespace: dict = {}
    exec(TEACHER, namespace)
    task = load_task(data=data)
    unit = task.with_preprocessing(
        preset_preprocessing("unit", task.recipe.preprocessing, task.data.facts)
    )
    torch.manual_seed(0)
    model = namespace["build"](len(task.recipe.labels), task.data.input_shape[0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    x, y = unit.data.train.x, all_labels(unit.data.train)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(y)).split(32):
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    save_file(model.state_dict(), folder / "teacher.safetensors")
    return accuracy(model, unit.data.test)


def fit(folder: Path, data: str, name: str, budget: str, epochs: int, *extra: str) -> dict:
    out = folder / f"run-{name}"
    argv = [
        sys.executable, "-m", "edgedistill", "fit", "--device", "host-cpu", "--budget", budget,
        "--teacher", f"{folder / 'teacher.py'}:build",
        "--teacher-weights", str(folder / "teacher.safetensors"),
        "--data", data, "--epochs", str(epochs), "--out", str(out), "--json", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise SystemExit(f"fit {name} failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout)
    summary["wall_s"] = time.perf_counter() - started
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--size", type=int, default=24)
    parser.add_argument("--budget", default="0.3ms")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--teacher-epochs", type=int, default=12)
    args = parser.parse_args()

    print(host_line())
    with tempfile.TemporaryDirectory(prefix="edgedistill-feeding-") as scratch:
        folder = Path(scratch)
        shapes = folder / "shapes"
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "byo" / "make_shapes.py"), str(shapes),
             "--per-class", str(args.per_class), "--size", str(args.size)],
            check=True, capture_output=True,
        )  # fmt: skip
        data = f"imagefolder:{shapes}"
        owners = train_teacher(data, folder, args.teacher_epochs)
        print(f"teacher trained on [0, 1] pixels: owner's test accuracy {owners:.4f}")
        runs = {
            "data mean/std (old default)": ("data", "--teacher-preprocess", "data"),
            "detected": ("detected",),
            "declared unit": ("unit", "--teacher-preprocess", "unit"),
        }
        print(
            "| fed as | how | teacher acc | student acc (deployed) | retention | "
            "flags | fit wall s |"
        )
        print("|---|---|---|---|---|---|---|")
        for label, (name, *extra) in runs.items():
            summary = fit(folder, data, name, args.budget, args.epochs, *extra)
            feeding = summary["teacher"]["feeding"] or {}
            flags = "; ".join(w.split(":")[0] for w in summary["warnings"]) or "none"
            print(
                f"| {label} | {feeding.get('how')} {feeding.get('preset') or ''} | "
                f"{summary['teacher']['accuracy']:.4f} | {summary['student']['accuracy']:.4f} "
                f"| {summary['retention']:.3f} | {flags} | {summary['wall_s']:.0f} |"
            )
            if feeding.get("accuracy_by_preset"):
                shown = ", ".join(f"{k} {v:.3f}" for k, v in feeding["accuracy_by_preset"].items())
                print(f"|  | val accuracy by preset ({feeding['samples']} samples): {shown} |")


if __name__ == "__main__":
    main()
