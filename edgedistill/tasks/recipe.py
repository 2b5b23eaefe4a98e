"""The task recipe (YAML): data, input, preprocessing, labels, teacher and distillation settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from edgedistill.documents import load_yaml
from edgedistill.errors import UserInputError, describe_validation
from edgedistill.inputs import Vocabulary
from edgedistill.tasks.text import is_text_source


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


class _Located(_Strict):
    """A section whose relative paths are read from a folder: the recipe's, or the working
    directory for values given as command-line flags."""

    _base_dir: Path | None = PrivateAttr(None)

    @property
    def base_dir(self) -> Path:
        return self._base_dir or Path.cwd()

    def located(self, base_dir: Path | None) -> _Located:
        self._base_dir = base_dir
        return self


class DataSpec(_Located):
    source: str = Field(
        description="images: imagefolder:DIR, npz:FILE, FILE.py:FN, package.module:FN or "
        "builtin:digits; texts: text:FILE, jsonl:FILE, csv:FILE or builtin:fortunes"
    )
    split: SplitSpec = SplitSpec()
    in_memory_mb: float = Field(
        256,
        ge=0,
        description="data that decodes to at most this many MB is held in memory (fast); "
        "larger data is decoded lazily, batch by batch, by --workers processes",
    )


class InputSpec(_Strict):
    name: str = "input"
    channels: int = Field(ge=1)
    height: int = Field(ge=4)
    width: int = Field(ge=4)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


class TokenInput(_Strict):
    """A text task's model input: `length` int64 token ids per text (padded or cut)."""

    name: str = "input_ids"
    length: int = Field(ge=2, le=8192)

    @property
    def shape(self) -> tuple[int]:
        return (self.length,)


class Tokenization(_Strict):
    """How a text becomes the model's input: the tokenizer's ids, padded or cut to max_length.

    As written, every field may be left out; the resolved recipe names the tokenizer folder,
    the length and the ids it produces (vocabulary size, padding id)."""

    description: str = ""
    tokenizer: str | None = Field(
        None,
        description="a folder of Hugging Face tokenizer files (relative: the recipe's folder); "
        "unset: the teacher's own (hf:DIR), else a WordPiece vocabulary learned from the train "
        "split",
    )
    vocab_size: int = Field(
        4000, ge=16, le=1_000_000, description="at most this many tokens, when one is learned"
    )
    max_length: int | None = Field(
        None,
        ge=2,
        le=8192,
        description="tokens per text (special tokens included); unset: the 95th percentile of "
        "the train split's lengths, rounded up to a multiple of 8",
    )
    vocabulary: int | None = Field(None, ge=2, description="ids the tokenizer produces")
    pad_id: int | None = Field(None, ge=0, description="the id that pads short texts")


class Preprocessing(_Strict):
    """What the device team must do to a raw image before feeding the model."""

    description: str
    resize: tuple[int, int]
    scale: float = Field(1.0, description="raw pixel value multiplier applied before mean/std")
    mean: list[float]
    std: list[float]
    channel_order: Literal["gray", "rgb", "bgr", "as-is"] = "rgb"
    interpolation: Literal["bilinear", "nearest", "bicubic"] = Field(
        "bilinear", description="how images are resized (half-pixel centres)"
    )


PRESETS = ("unit", "imagenet", "signed", "raw", "data")


class TeacherPreprocess(_Strict):
    """What the user's teacher was trained on: a named convention, and fields that override it.

    Presets (raw values first brought to [0, 1] by the data's full scale, 255 for 8-bit
    images): unit [0, 1]; imagenet torchvision's mean/std; signed [-1, 1]; raw 0..255;
    data the data's own mean/std. Without a preset, fields override `unit`.
    """

    preset: Literal["unit", "imagenet", "signed", "raw", "data"] | None = None
    scale: float | None = Field(
        None, gt=0, description="raw value multiplier, e.g. 1/255 (replaces the preset's)"
    )
    mean: list[float] | None = Field(None, min_length=1)
    std: list[float] | None = Field(None, min_length=1)
    channel_order: Literal["gray", "rgb", "bgr"] | None = None
    resize: tuple[int, int] | None = None
    interpolation: Literal["bilinear", "nearest", "bicubic"] | None = None
    layout: Literal["nchw", "nhwc"] = Field(
        "nchw", description="the tensor layout the teacher takes (nhwc: channels last)"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset_shorthand(cls, value: Any) -> Any:
        """`imagenet` is short for `{preset: imagenet}`; a scale may be written `1/255`."""
        if isinstance(value, str):
            return {"preset": value}
        if isinstance(value, dict) and isinstance(value.get("scale"), str):
            return {**value, "scale": _fraction(value["scale"])}
        return value

    @model_validator(mode="after")
    def _positive_std(self) -> TeacherPreprocess:
        if self.std is not None and any(v <= 0 for v in self.std):
            raise ValueError("std values must be above 0")
        if self.resize is not None and min(self.resize) < 4:
            raise ValueError("resize must be at least 4x4")
        return self


def _fraction(text: str) -> float | str:
    """`1/255` -> 0.00392...; anything unreadable is left for the validator to refuse."""
    numerator, slash, denominator = text.partition("/")
    try:
        return float(numerator) / float(denominator) if slash else float(text)
    except (ValueError, ZeroDivisionError):
        return text


class AugmentSpec(_Strict):
    """Random augmentation of training inputs; with it on, teacher outputs are computed online."""

    shift: int = Field(0, ge=0, le=64, description="random translation by up to N pixels")
    hflip: bool = Field(False, description="random horizontal flip")

    @property
    def is_random(self) -> bool:
        return self.shift > 0 or self.hflip


class TrainSpec(_Strict):
    epochs: int = Field(ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd momentum")
    schedule: Literal["cosine", "step", "constant"] = Field(
        "cosine", description="learning rate per epoch: cosine decay, x0.1 at 50/75 %, or flat"
    )
    warmup_epochs: int = Field(0, ge=0, description="linear learning-rate warm-up epochs")
    patience: int | None = Field(
        5, ge=1, description="epochs without val improvement before stopping (null: never)"
    )
    augment: AugmentSpec = AugmentSpec()


class TeacherSpec(_Located):
    """The user's teacher (`source`), or the built-in `arch` trained on the task's data."""

    source: str | None = Field(
        None,
        description="FILE.py:FN or package.module:FN (a function returning an nn.Module), or "
        "FILE.onnx (run with onnxruntime, logits only); unset: the built-in arch, trained here",
    )
    weights: str | None = Field(
        None, description="state dict for `source`: .safetensors, or a torch.save'd state dict"
    )
    arch: Literal["resnet", "transformer"] = Field(
        "resnet", description="the built-in teacher: resnet (images) or transformer (texts)"
    )
    widths: list[int] = Field([32, 64, 128], min_length=1)
    blocks: list[int] = Field([2, 2, 2], min_length=1)
    encoder: str = Field(
        "tfm:l=4,h=256", description="the built-in transformer's layers and widths (a tfm spec)"
    )
    train: TrainSpec | None = None
    preprocess: TeacherPreprocess | None = Field(
        None,
        description="what the teacher expects (a preset or fields); unset: detected for your "
        "teacher, the task's preprocessing for the built-in one",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TeacherSpec:
        if len(self.widths) != len(self.blocks):
            raise ValueError("widths and blocks must have one entry per stage")
        if self.source is None and self.train is None:
            raise ValueError("train settings are needed to train the built-in teacher (no source)")
        if self.weights is not None and self.source is None:
            raise ValueError("weights need a source (the module they belong to)")
        return self


class LossSpec(_Strict):
    """One entry of distill.losses: a loss name, its weight, its own parameters.

    Kept as data here: the names and parameters are checked against the loss registry by
    `edgedistill.distill.losses.check_losses` before anything is trained.

    `{name: kd, temperature: 2}` is short for `{name: kd, params: {temperature: 2}}`.
    """

    name: str
    weight: float = Field(1.0, ge=0, description="weight of this term in the objective")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_params(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value:
            outer = {k: v for k, v in value.items() if k in ("name", "weight")}
            return {**outer, "params": {k: v for k, v in value.items() if k not in outer}}
        return value


class QatSpec(_Strict):
    """Quantization-aware distillation after the fp32 one, when the run deploys int8."""

    epochs: int = Field(
        3, ge=0, description="QAT epochs with the teacher's soft targets (0: calibration only)"
    )
    lr: float | None = Field(
        None, gt=0, description="QAT learning rate (null: a tenth of train.lr)"
    )
    calibration_samples: int = Field(
        512, ge=1, description="train samples whose activation ranges set the int8 scales"
    )
    min_train_samples: int = Field(
        200, ge=1, description="fewer train samples than this: post-training quantization only"
    )


class DistillSpec(_Strict):
    losses: list[LossSpec] = Field(
        default_factory=lambda: [LossSpec(name="kd")],
        min_length=1,
        description="terms of the objective, and at most one procedure (born-again, progressive)",
    )
    teachers: list[str] = Field(
        default_factory=list,
        description="more teachers beside the task's, for multi-teacher (distill output folders)",
    )
    train: TrainSpec
    qat: QatSpec = QatSpec()
    init: Literal["fresh", "teacher"] = Field(
        "fresh",
        description="text students: teacher copies the teacher's embeddings and every k-th "
        "layer into the student where the widths match (DistilBERT); fresh starts at random",
    )

    @model_validator(mode="before")
    @classmethod
    def _single_loss_shorthand(cls, value: Any) -> Any:
        """`loss: kd` with `temperature` / `alpha` is short for a one-entry `losses` list."""
        if not isinstance(value, dict) or "loss" not in value:
            return value
        if "losses" in value:
            raise ValueError("give either loss (one name) or losses (a list), not both")
        rest = dict(value)
        entry = {"name": rest.pop("loss")}
        for key in ("temperature", "alpha"):
            if key in rest:
                entry[key] = rest.pop(key)
        return {**rest, "losses": [entry]}

    @model_validator(mode="after")
    def _each_loss_once(self) -> DistillSpec:
        names = [spec.name for spec in self.losses]
        if len(set(names)) != len(names):
            raise ValueError(f"losses: each loss may appear once, got {', '.join(names)}")
        return self


METRICS = {
    "classification": ("accuracy",),
    "regression": ("mae", "rmse", "r2"),
    "embedding": ("cosine", "neighbour_agreement"),
}
TaskType = Literal["classification", "regression", "embedding"]


class TaskRecipe(_Strict):
    schema_version: Literal[1] = 1
    name: str
    task_type: TaskType = "classification"
    metrics: list[Literal["accuracy", "mae", "rmse", "r2", "cosine", "neighbour_agreement"]] = (
        Field(
            None,  # type: ignore[assignment]
            min_length=1,
            description="figures reported (default: accuracy; mae, rmse and r2 for regression; "
            "cosine and neighbour_agreement for sentence embeddings)",
        )
    )
    data: DataSpec
    input: InputSpec | TokenInput
    preprocessing: Preprocessing | Tokenization
    labels: list[str] = Field(
        min_length=1,
        description="class names; for regression, the outputs' names; for sentence embeddings, "
        "the embedding's dimensions (filled in from the teacher)",
    )
    teacher: TeacherSpec
    distill: DistillSpec

    @model_validator(mode="before")
    @classmethod
    def _default_metrics(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("metrics") is None:
            kind = value.get("task_type", "classification")
            return {**value, "metrics": list(METRICS.get(kind, METRICS["classification"]))}
        return value

    @model_validator(mode="after")
    def _fits_the_task_type(self) -> TaskRecipe:
        _check_task_type(self.task_type, self.metrics, self.labels)
        return self

    @property
    def vocabulary(self) -> Vocabulary | None:
        """A text task's token ids (its resolved tokenization); None for images."""
        found = self.preprocessing
        if isinstance(found, Tokenization) and found.vocabulary is not None:
            embedding = self.task_type == "embedding"
            return Vocabulary(found.vocabulary, found.pad_id or 0, embedding)
        return None


def _check_task_type(task_type: str, metrics: list[str] | None, labels: list[str] | None):
    wrong = [m for m in metrics or [] if m not in METRICS[task_type]]
    if wrong:
        raise ValueError(
            f"metrics {wrong} do not apply to {task_type} "
            f"(choose from {', '.join(METRICS[task_type])})"
        )
    if task_type == "classification" and labels is not None and len(labels) < 2:
        raise ValueError("labels: classification needs at least two classes")


class RecipeDocument(TaskRecipe):
    """A recipe as written: input, preprocessing and labels may be left to the data to tell."""

    input: InputSpec | TokenInput | None = None  # type: ignore[assignment]
    preprocessing: Preprocessing | Tokenization | None = None  # type: ignore[assignment]
    labels: list[str] | None = Field(None, min_length=1)  # type: ignore[assignment]
    task_type: TaskType | None = None  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def _default_metrics(cls, value: Any) -> Any:
        """Metrics left out follow the task type, which may be left to the data."""
        return value

    @model_validator(mode="after")
    def _fits_the_task_type(self) -> RecipeDocument:
        if self.task_type is not None:
            _check_task_type(self.task_type, self.metrics, self.labels)
        return self

    def for_task_type(self, task_type: str) -> RecipeDocument:
        """The document with the data's task type; a distill section taken from the defaults
        becomes the defaults of that type."""
        update: dict[str, Any] = {"task_type": task_type}
        if self.distill == default_distill("classification") and task_type == "regression":
            update["distill"] = default_distill(task_type)
        if self.distill == default_distill("text") and task_type == "embedding":
            update["distill"] = default_distill(task_type)
        _check_task_type(task_type, self.metrics, self.labels)
        return self.model_copy(update=update)

    def is_complete(self) -> bool:
        if isinstance(self.preprocessing, Tokenization):  # complete once resolved from data
            found = self.preprocessing
            return None not in (found.tokenizer, found.max_length, found.vocabulary, found.pad_id)
        return None not in (self.input, self.preprocessing, self.labels)

    def resolved(self, **fields) -> TaskRecipe:
        """The TaskRecipe with `fields` (input, preprocessing, labels) filled in."""
        values = {name: getattr(self, name) for name in TaskRecipe.model_fields}
        values.update(fields)
        if values["task_type"] is None:  # a recipe that leaves it to the data, read alone
            values["task_type"] = "classification"
        return TaskRecipe.model_validate(values)


BUILTIN_TASKS = {
    "digits": Path(__file__).with_name("digits.yaml"),
    "digits-pose": Path(__file__).with_name("digits_pose.yaml"),
    "fortunes": Path(__file__).with_name("fortunes.yaml"),
}
# Sections a recipe may leave out, and the settings used when `fit --data` has no recipe.
DEFAULTS = Path(__file__).with_name("defaults.yaml")


def _read_yaml(path: Path) -> dict:
    data = load_yaml(path, str(path), "task recipe")
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a task recipe must be a YAML mapping")
    return data


def _defaults() -> dict:
    return yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))


# defaults.yaml's distill section per task type ("text": a text classification task's)
DEFAULT_DISTILL = {
    "regression": "regression_distill",
    "text": "text_distill",
    "embedding": "embedding_distill",
}


def default_distill(task_type: str) -> DistillSpec:
    """The distill section a recipe of this task type gets when it leaves it out."""
    defaults = _defaults()
    key = DEFAULT_DISTILL.get(task_type, "distill")
    return DistillSpec.model_validate(defaults[key])


def _validate(data: dict, where: str) -> RecipeDocument:
    defaults = _defaults()
    task_type = data.get("task_type")
    if not isinstance(task_type, str):  # a wrong type is the schema's to name
        task_type = None
    if task_type == "regression":
        defaults["distill"] = defaults["regression_distill"]
    source = (data.get("data") or {}).get("source") if isinstance(data.get("data"), dict) else None
    if isinstance(source, str) and is_text_source(source):
        defaults["teacher"], defaults["distill"] = (
            defaults["text_teacher"],
            defaults[DEFAULT_DISTILL.get(task_type or "", "text_distill")],
        )
    for section in ("teacher", "distill"):
        data.setdefault(section, defaults[section])
    try:
        return RecipeDocument.model_validate(data)
    except ValidationError as exc:
        fields = describe_validation(exc)
        raise UserInputError(f"{where}: invalid task recipe: {fields}") from None


def read_recipe(name_or_path: str, flag: str = "--task") -> RecipeDocument:
    """A built-in task name or a recipe YAML file, as written (relative paths: its folder)."""
    path = BUILTIN_TASKS.get(name_or_path, Path(name_or_path))
    if name_or_path not in BUILTIN_TASKS and not path.is_file():
        raise UserInputError(
            f"{flag}: {name_or_path!r} is neither a built-in task ({', '.join(BUILTIN_TASKS)}) "
            "nor an existing recipe file"
        )
    document = _validate(_read_yaml(path), str(path))
    folder = path.resolve().parent
    document.data.located(folder)
    document.teacher.located(folder)
    return document


def recipe_for_data(source: str, name: str) -> RecipeDocument:
    """The recipe `fit --data SPEC` uses when no --task is given: defaults, the rest from data."""
    document = _validate({"name": name, "data": {"source": source}}, "--data")
    document.data.located(Path.cwd())
    return document
