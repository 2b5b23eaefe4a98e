"""Train the example teacher on an image folder; save its weights (safetensors) and an ONNX copy.

This stands in for the training code you already have. Like most training code, it feeds the
teacher pixels scaled to [0, 1] and nothing more (torchvision's ToTensor(); `--preprocess`
picks another convention: imagenet, signed, raw, data). `edgedistill fit` finds out on its
own which convention the teacher scores best under (or takes `--teacher-preprocess`), and
feeds the teacher, the student and the bundle the same.

    python examples/byo/train_teacher.py shapes --out shapes-teacher --epochs 8
    python examples/byo/train_teacher.py --task examples/byo/shapes.yaml --out ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from teacher import build  # noqa: E402  (the file next to this one)

from edgedistill.tasks.conventions import preset_preprocessing  # noqa: E402
from edgedistill.tasks.data import all_labels, iter_batches  # noqa: E402
from edgedistill.tasks.recipe import PRESETS  # noqa: E402
from edgedistill.tasks.task import load_task  # noqa: E402


def accuracy(model, dataset) -> float:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x).argmax(1) for x, _ in iter_batches(dataset)])
    return float((predicted == all_labels(dataset)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="the image folder (one sub-folder per class)")
    parser.add_argument("--task", help="a task recipe instead (its data and preprocessing)")
    parser.add_argument("--out", type=Path, default=Path("shapes-teacher"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--preprocess",
        choices=PRESETS,
        help="pixel convention (default: unit; with --task, the recipe's preprocessing)",
    )
    args = parser.parse_args()

    if (args.data is None) == (args.task is None):
        parser.error("give the image folder or --task RECIPE.yaml")
    data_spec = None if args.data is None else f"imagefolder:{args.data}"
    task = load_task(args.task, data=data_spec)
    preset = args.preprocess or ("unit" if args.task is None else "data")
    if preset != "data":
        facts = task.data.facts
        task = task.with_preprocessing(
            preset_preprocessing(preset, task.recipe.preprocessing, facts)
        )
    recipe, data = task.recipe, task.data
    torch.manual_seed(args.seed)
    model = build(num_classes=len(recipe.labels), in_channels=recipe.input.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    labeled = torch.nonzero(all_labels(data.train) >= 0).flatten().tolist()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(data.train, labeled), batch_size=16, shuffle=True
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * len(loader))
    best_accuracy, best_state = -1.0, None
    for epoch in range(1, args.epochs + 1):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        val_accuracy = accuracy(model, data.val)
        print(f"epoch {epoch}: val accuracy {val_accuracy:.3f}")
        if val_accuracy > best_accuracy:  # keep the best epoch's weights
            best_accuracy = val_accuracy
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)

    args.out.mkdir(parents=True, exist_ok=True)
    model.eval()
    save_file(model.state_dict(), args.out / "teacher.safetensors")
    example = torch.zeros((1, *data.input_shape))
    torch.onnx.export(
        model,
        (example,),
        args.out / "teacher.onnx",
        input_names=["input"],
        output_names=["logits"],
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
    )
    print(
        f"test accuracy {accuracy(model, data.test):.3f}; wrote {args.out}/teacher.safetensors "
        f"and {args.out}/teacher.onnx"
    )


if __name__ == "__main__":
    main()
