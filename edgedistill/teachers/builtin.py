"""Built-in teachers, trained on first use and cached: a ResNet-style CNN (He et al. 2016) for
images, a BERT-style encoder (the tfm family, students/transformer.py) for token ids.

This module knows the architecture and the cache; training it is the distill package's job
(`edgedistill.distill.teacher_training`), which asks `needs_training` and calls `store`.
The cache key covers the recipe's teacher settings, the data fingerprint and the torch version,
so a changed recipe or data set trains a new teacher instead of silently reusing an old one.
Weights are stored as safetensors next to a small JSON file with the teacher's test accuracy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic
from edgedistill.errors import UserInputError
from edgedistill.inputs import takes_tokens
from edgedistill.latency.costs import model_cost
from edgedistill.paths import cache_dir
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.registry import Registry
from edgedistill.students import Candidate, build_student, parse_student, with_task_knobs
from edgedistill.students.select import candidate_cost
from edgedistill.teachers.forms import TEACHER_FORMS, TeacherNames
from edgedistill.teachers.record import Teacher
from edgedistill.weights import load_safetensors, save_safetensors

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


# arch -> builder(spec, data, num_classes) of the untrained module
TEACHER_ARCHES: Registry = Registry("built-in teacher arch")


@TEACHER_ARCHES.register("resnet")
def _resnet(spec: TeacherSpec, data: TaskData, num_classes: int) -> nn.Module:
    if takes_tokens(data.input_shape):
        raise UserInputError(
            "field teacher.arch: resnet takes images; a text task's built-in teacher is "
            "arch: transformer"
        )
    return build_resnet(spec, data.input_shape[0], num_classes)


def encoder_candidate(spec: TeacherSpec, data: TaskData) -> Candidate:
    """The transformer teacher's tfm spec, over the task's vocabulary."""
    if not takes_tokens(data.input_shape) or data.vocabulary is None:
        raise UserInputError(
            "field teacher.arch: transformer takes token ids; an image task's built-in teacher "
            "is arch: resnet"
        )
    given = Candidate.parse(spec.encoder, "field teacher.encoder")
    return parse_student(with_task_knobs(given, data.vocabulary).spec, "field teacher.encoder")


@TEACHER_ARCHES.register("transformer")
def _transformer(spec: TeacherSpec, data: TaskData, num_classes: int) -> nn.Module:
    return build_student(encoder_candidate(spec, data), data.input_shape, num_classes)


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


@dataclass
class BuiltinPrepared:
    """The recipe's built-in architecture: trained on first use, then loaded from the cache."""

    recipe: TaskRecipe
    data: TaskData
    form: str = "builtin"
    notes: list[str] = field(default_factory=list)

    def weights_path(self, seed: int) -> Path:
        key = _cache_key(self.recipe, self.data, seed)
        return cache_dir() / "teachers" / f"{self.recipe.name}-{key}.safetensors"

    def architecture(self) -> nn.Module:
        """The untrained architecture (for layer checks before any training)."""
        build = TEACHER_ARCHES.get(self.recipe.teacher.arch)
        return build(self.recipe.teacher, self.data, len(self.recipe.labels))

    def cost(self):
        """Params and MACs of the architecture (a transformer's counted from its shape)."""
        if self.recipe.teacher.arch == "transformer":
            spec = encoder_candidate(self.recipe.teacher, self.data).spec
            return candidate_cost(spec, tuple(self.data.input_shape), len(self.recipe.labels))
        return model_cost(self.architecture(), self.data.input_shape)

    def needs_training(self, seed: int = 0) -> bool:
        path = self.weights_path(seed)
        return not (path.is_file() and path.with_suffix(".json").is_file())

    def store(self, model: nn.Module, test_accuracy: float, val_accuracy: float, seed: int) -> None:
        """Cache a freshly trained teacher (weights, then the JSON that marks it complete)."""
        path = self.weights_path(seed)
        save_safetensors(path, model)
        meta = {"test_accuracy": test_accuracy, "val_accuracy": val_accuracy, "key": path.stem}
        atomic.write_json(path.with_suffix(".json"), meta)
        log.info("teacher test accuracy %.4f, cached at %s", test_accuracy, path)

    def load(self, seed: int = 0, progress: ProgressFn = no_progress) -> Teacher:
        path = self.weights_path(seed)
        if self.needs_training(seed):
            raise FileNotFoundError(f"the {self.recipe.name} teacher is not trained yet ({path})")
        model = self.architecture()
        model.load_state_dict(load_safetensors(path))
        model.eval()
        meta = json.loads(path.with_suffix(".json").read_text())
        log.info("teacher loaded from cache %s", path)
        cost = self.cost()
        return Teacher(
            name="task",
            model=model,
            params=cost.params,
            macs=cost.macs,
            test_accuracy=meta["test_accuracy"],
            val_accuracy=meta["val_accuracy"],
            form="builtin",
            source="",
            cache_path=str(path),
        )


@TEACHER_FORMS.register("builtin")
class BuiltinForm:
    """The recipe names no teacher source: the recipe's own ResNet."""

    def claims(self, spec: TeacherSpec) -> bool:
        return spec.source is None

    def prepare(self, recipe: TaskRecipe, data: TaskData, names: TeacherNames) -> BuiltinPrepared:
        return BuiltinPrepared(recipe, data)
