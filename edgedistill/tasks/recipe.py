"""The task recipe (YAML): data, input, preprocessing, labels, teacher and distillation settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgedistill.errors import UserInputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(_Strict):
    """Fractions of a stratified split made with a fixed seed; test gets the rest."""

    train: float = Field(0.7, gt=0, lt=1)
    val: float = Field(0.15, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _leaves_a_test_split(self) -> SplitSpec:
        if self.train + self.val >= 1:
            raise ValueError("train + val must leave a test split (sum below 1)")
        return self


class DataSpec(_Strict):
    source: str = Field(description="data adapter and argument, e.g. builtin:digits")
    split: SplitSpec = SplitSpec()


class InputSpec(_Strict):
    name: str = "input"
    channels: int = Field(ge=1)
    height: int = Field(ge=4)
    width: int = Field(ge=4)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


class Preprocessing(_Strict):
    """What the device team must do to a raw image before feeding the model."""

    description: str
    resize: tuple[int, int]
    scale: float = Field(1.0, description="raw pixel value multiplier applied before mean/std")
    mean: list[float]
    std: list[float]
    channel_order: Literal["gray", "rgb", "bgr"] = "rgb"


class TrainSpec(_Strict):
    epochs: int = Field(ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(5, ge=1, description="epochs without val improvement before stopping")


class TeacherSpec(_Strict):
    arch: Literal["resnet"] = "resnet"
    widths: list[int] = Field(min_length=1)
    blocks: list[int] = Field(min_length=1)
    train: TrainSpec

    @model_validator(mode="after")
    def _same_length(self) -> TeacherSpec:
        if len(self.widths) != len(self.blocks):
            raise ValueError("widths and blocks must have one entry per stage")
        return self


class DistillSpec(_Strict):
    loss: Literal["kd", "ce"] = "kd"
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the soft-target term")
    train: TrainSpec


class TaskRecipe(_Strict):
    schema_version: Literal[1] = 1
    name: str
    task_type: Literal["classification"] = "classification"
    data: DataSpec
    input: InputSpec
    preprocessing: Preprocessing
    labels: list[str] = Field(min_length=2)
    teacher: TeacherSpec
    distill: DistillSpec


BUILTIN_TASKS = {"digits": Path(__file__).with_name("digits.yaml")}


def load_recipe(name_or_path: str, flag: str = "--task") -> TaskRecipe:
    """A built-in task name or the path of a recipe YAML file."""
    path = BUILTIN_TASKS.get(name_or_path, Path(name_or_path))
    if name_or_path not in BUILTIN_TASKS and not path.is_file():
        raise UserInputError(
            f"{flag}: {name_or_path!r} is neither a built-in task ({', '.join(BUILTIN_TASKS)}) "
            "nor an existing recipe file"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserInputError(f"{path}: cannot read task recipe ({exc})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a task recipe must be a YAML mapping")
    try:
        return TaskRecipe.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(
            f"field {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise UserInputError(f"{path}: invalid task recipe: {fields}") from None
