"""Built-in teachers: a ResNet-style CNN (He et al. 2016) trained on first use and cached.

The cache key covers the recipe's teacher settings, the data fingerprint and the torch version,
so a changed recipe or data set trains a new teacher instead of silently reusing an old one.
Weights are stored as safetensors next to a small JSON file with the teacher's test accuracy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill import atomic
from edgedistill.paths import cache_dir
from edgedistill.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe, TeacherSpec

log = logging.getLogger(__name__)


def build_resnet(spec: TeacherSpec, in_channels: int, num_classes: int) -> nn.Module:
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class ResNetTeacher(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = spec.widths[0]
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
            stages = []
            for index, (cout, blocks) in enumerate(zip(spec.widths, spec.blocks, strict=True)):
                for block in range(blocks):
                    stride = 2 if index > 0 and block == 0 else 1
                    stages.append(BasicBlock(width, cout, stride))
                    width = cout
            self.layers = nn.Sequential(*stages)
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))

    return ResNetTeacher()


@dataclass
class Teacher:
    """A teacher ready to distill from: `model(x)` gives logits for a batch of inputs."""

    model: nn.Module
    test_accuracy: float
    val_accuracy: float
    cache_path: str  # where its weights live (the cache, the user's weights file, the .onnx)
    trained_now: bool
    form: str = "builtin"  # builtin | python | onnx (TEACHER_SOURCES)
    source: str = ""  # what the recipe or --teacher named
    logits_only: bool = False  # True: no layers to hook (ONNX): feature/attention losses cannot run
    onnx_path: str | None = None  # an ONNX file that is the teacher (timed as it is)
    params: int | None = None  # known without tracing the module (ONNX initializers)
    macs: int | None = None


def labeled_part(dataset):
    """The samples of a training split that carry a label (y >= 0)."""
    import torch
    from torch.utils.data import Subset

    from edgedistill.tasks.data import Split, all_labels

    labels = all_labels(dataset)
    keep = labels >= 0
    if bool(keep.all()):
        return dataset
    if isinstance(dataset, Split):
        return Split(dataset.x[keep], dataset.y[keep])
    return Subset(dataset, torch.nonzero(keep).flatten().tolist())


def _cache_key(recipe: TaskRecipe, data: TaskData, seed: int) -> str:
    import torch

    material = json.dumps(
        {
            "teacher": recipe.teacher.model_dump(mode="json"),
            "data": data.fingerprint,
            "classes": len(recipe.labels),
            "seed": seed,
            "torch": torch.__version__.split("+")[0],
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def builtin_teacher(
    recipe: TaskRecipe, data: TaskData, seed: int = 0, progress: ProgressFn = no_progress
) -> Teacher:
    """Load the recipe's teacher from the cache, or train it (once) and cache it.

    A recipe that names its own teacher (teacher.source) gets that one, through
    TEACHER_SOURCES, so callers that only know the task still use the user's teacher.
    """
    import torch
    from safetensors.torch import load_file, save

    from edgedistill.distill.losses import LOSSES
    from edgedistill.distill.trainer import accuracy, train

    if recipe.teacher.source is not None:
        from edgedistill.tasks.teacher_sources import prepare_teacher

        return prepare_teacher(recipe, data).load(seed=seed, progress=progress)
    key = _cache_key(recipe, data, seed)
    weights_path = cache_dir() / "teachers" / f"{recipe.name}-{key}.safetensors"
    meta_path = weights_path.with_suffix(".json")
    model = build_resnet(recipe.teacher, data.input_shape[0], len(recipe.labels))
    if weights_path.is_file() and meta_path.is_file():
        model.load_state_dict(load_file(weights_path))
        model.eval()
        meta = json.loads(meta_path.read_text())
        log.info("teacher loaded from cache %s", weights_path)
        return Teacher(model, meta["test_accuracy"], meta["val_accuracy"], str(weights_path), False)

    log.info("training the %s teacher (first use; cached afterwards)", recipe.name)
    torch.manual_seed(seed)
    model = build_resnet(recipe.teacher, data.input_shape[0], len(recipe.labels))
    assert recipe.teacher.train is not None  # the recipe schema requires it without a source
    result = train(
        model,
        labeled_part(data.train),
        data.val,
        recipe.teacher.train,
        LOSSES.get("ce")(recipe.distill),
        seed=seed,
        progress=progress,
        stage="teacher",
    )
    test_accuracy = accuracy(model, data.test)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    atomic.write_bytes(weights_path, save(state))
    atomic.write_json(
        meta_path,
        {"test_accuracy": test_accuracy, "val_accuracy": result.best_val_accuracy, "key": key},
    )
    log.info("teacher test accuracy %.4f, cached at %s", test_accuracy, weights_path)
    return Teacher(model, test_accuracy, result.best_val_accuracy, str(weights_path), True)
