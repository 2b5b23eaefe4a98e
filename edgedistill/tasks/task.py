"""A task ready to run: recipe + flags, completed from the data (input shape, labels,
preprocessing) and the data split — all before training. The teacher the recipe (or
--teacher) names is checked against it by `edgedistill.teachers.prepare_teacher`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.errors import UserInputError, describe_validation
from edgedistill.tasks.conventions import parse_declaration
from edgedistill.tasks.data import build_task_data, context_for, open_source, parse_source
from edgedistill.tasks.preprocess import (
    STAT_SAMPLES,
    Preprocessor,
    default_preprocessing,
    identity_preprocessing,
)
from edgedistill.tasks.recipe import (
    InputSpec,
    Preprocessing,
    RecipeDocument,
    TaskRecipe,
    TeacherSpec,
    read_recipe,
    recipe_for_data,
)
from edgedistill.tasks.splits import split_indices
from edgedistill.tasks.table import SampleTable, TableDataset
from edgedistill.tasks.text import is_text_source
from edgedistill.tasks.text_task import resolve_text

if TYPE_CHECKING:
    from edgedistill.tasks.data import TaskData


@dataclass(frozen=True)
class TeacherNames:
    """How to name the teacher settings in messages: flags, or the recipe's fields."""

    source: str = "--teacher"
    weights: str = "--teacher-weights"
    preprocess: str = "field teacher.preprocess"


@dataclass
class Task:
    recipe: TaskRecipe  # complete: input, labels and preprocessing filled in from the data
    data: TaskData
    notes: list[str] = field(default_factory=list)
    teacher_names: TeacherNames = field(default_factory=TeacherNames)
    # How it was read, so that it can be read again with another preprocessing (the teacher's)
    document: RecipeDocument | None = None
    where: str = "field data.source"
    workers: int = 0
    table: SampleTable | None = None
    parts: dict[str, Any] | None = None  # rows of each split in the table

    @property
    def preprocessing_given(self) -> bool:
        """True when the recipe states the preprocessing (it is not taken from the data)."""
        return self.document is not None and self.document.preprocessing is not None

    def with_preprocessing(self, preprocessing: Preprocessing) -> Task:
        """The same task and split, its data read again with `preprocessing`."""
        assert self.document is not None
        document = self.document.model_copy(update={"preprocessing": preprocessing})
        return _task(document, self.where, self.workers, self.teacher_names)

    def view(self, preprocessing: Preprocessing, split: str, limit: int, seed: int = 0):
        """Up to `limit` samples of a split (a seeded choice) fed with `preprocessing`, decoded
        lazily: what the teacher would see under another convention, without reloading."""
        import numpy as np

        assert self.table is not None and self.parts is not None
        rows = self.parts[split]
        if len(rows) > limit:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(rows, size=limit, replace=False))
        return TableDataset(self.table, rows, Preprocessor(preprocessing))


def load_task(
    task: str | None = None,
    data: str | None = None,
    teacher: str | None = None,
    teacher_weights: str | None = None,
    workers: int = 0,
    teacher_preprocess: str | None = None,
) -> Task:
    """`fit --task/--data/--teacher/--teacher-weights/--teacher-preprocess`: every input read
    and checked (the teacher's preprocessing is applied by `edgedistill.teachers.feed_teacher`).

    Without --task, --data uses the default settings (edgedistill/tasks/defaults.yaml) and
    takes everything else from the data; without either, the built-in digits task runs.
    """

    if workers < 0:
        raise UserInputError(f"--workers: must be 0 or more, got {workers}")
    if task is None and data is not None:
        document = recipe_for_data(data, _name_for(data))
        where = "--data"
    else:
        document = read_recipe(task or "digits")
        where = f"{task or 'digits'}: field data.source"
        if data is not None:
            spec = document.data.model_copy(update={"source": data}).located(Path.cwd())
            document = document.model_copy(update={"data": spec})
            where = "--data"
    document, names = _with_teacher_flags(document, task, teacher, teacher_weights)
    if teacher_preprocess is not None:
        declared = parse_declaration(teacher_preprocess)
        spec = document.teacher.model_copy(update={"preprocess": declared})
        document = document.model_copy(update={"teacher": spec})
        names = replace(names, preprocess="--teacher-preprocess")
    return _task(document, where, workers, names)


def resolve_task(document: RecipeDocument, workers: int = 0) -> Task:
    """A recipe document's task without its teacher (for commands that need shapes only)."""
    return _task(document, "field data.source", workers, TeacherNames())


def _task(document: RecipeDocument, where: str, workers: int, names: TeacherNames) -> Task:
    recipe, data, table, parts = _resolve(document, where, workers)
    return Task(recipe, data, list(data.notes), names, document, where, workers, table, parts)


def resolve_document(
    document: RecipeDocument, where: str, workers: int
) -> tuple[TaskRecipe, TaskData]:
    recipe, data, _, _ = _resolve(document, where, workers)
    return recipe, data


def _resolve(document: RecipeDocument, where: str, workers: int):
    """(recipe, data, table, rows of each split); a text task has no image table."""
    if is_text_source(document.data.source):
        recipe, data = resolve_text(document, where)
        return recipe, data, None, None
    table = open_source(document.data, context_for(document, where))
    found = "regression" if table.targets is not None else "classification"
    if document.task_type is None:
        try:
            document = document.for_task_type(found)
        except ValueError as exc:
            raise UserInputError(
                f"task {document.name}: the data has {_target_words[found]}, so it is a "
                f"{found} task: {exc}"
            ) from None
    if found != document.task_type:
        raise UserInputError(
            f"task {document.name}: field task_type is {document.task_type} but the data "
            f"({table.source}) has {_target_words[found]}; set task_type: {found}, or give "
            f"{_target_words[document.task_type]}"
        )
    parts, record = split_indices(table, document.data.split)
    recipe = _complete(document, table, parts["train"])
    return recipe, build_task_data(table, recipe, workers, (parts, record)), table, parts


def _name_for(data: str) -> str:
    """A task name from a data spec: the folder or file name, or the function name."""

    if is_text_source(data):
        return Path(data.partition(":")[2].rstrip("/")).stem or "text"
    scheme, argument = parse_source(data, "--data")
    if scheme == "python":
        return argument.rpartition(":")[2]
    return Path(argument.rstrip("/")).stem or "custom"


def _absolute(value: str) -> str:
    """A flag value's file part made absolute (flags are relative to the working directory)."""
    target, sep, function = value.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).expanduser().resolve()}:{function}"
    if value.lower().endswith(".onnx") or not sep:
        return str(Path(value).expanduser().resolve())
    return value


def _with_teacher_flags(
    document: RecipeDocument, task: str | None, teacher: str | None, weights: str | None
):
    from pydantic import ValidationError

    recipe_name = task or "digits"
    names = TeacherNames(
        source="--teacher" if teacher else f"{recipe_name}: field teacher.source",
        weights="--teacher-weights" if weights else f"{recipe_name}: field teacher.weights",
        preprocess=f"{recipe_name}: field teacher.preprocess",
    )
    if teacher is None and weights is None:
        return document, names
    if weights is not None and teacher is None and document.teacher.source is None:
        raise UserInputError(
            "--teacher-weights: needs --teacher (the module the weights belong to)"
        )
    values = document.teacher.model_dump()
    if teacher is not None:
        values.update(source=_absolute(teacher), weights=None, preprocess=None)
    if weights is not None:
        values["weights"] = str(Path(weights).expanduser().resolve())
    try:
        spec = TeacherSpec.model_validate(values).located(document.teacher.base_dir)
    except ValidationError as exc:
        raise UserInputError(f"--teacher: {describe_validation(exc, locations=False)}") from None
    return document.model_copy(update={"teacher": spec}), names


def _complete(document: RecipeDocument, table: SampleTable, train_rows) -> TaskRecipe:
    """Fill in input, labels and preprocessing from the data; check what the recipe gives."""
    facts = table.facts
    where = f"task {document.name}"
    labels = _labels(document, table, where)
    preprocessing = document.preprocessing
    if preprocessing is None:
        preprocessing = _default_preprocessing(document, table, train_rows)
    if document.input is not None:
        model_input = document.input
    elif facts.kind == "ready":
        model_input = InputSpec(channels=facts.channels, height=facts.height, width=facts.width)
    else:
        height, width = preprocessing.resize
        model_input = InputSpec(channels=facts.channels, height=height, width=width)
    if model_input.channels != facts.channels:
        raise UserInputError(
            f"{where}: field input.channels is {model_input.channels} but the data "
            f"({table.source}) has {facts.channels}"
        )
    if facts.kind != "ready":
        if tuple(preprocessing.resize) != (model_input.height, model_input.width):
            raise UserInputError(
                f"{where}: field preprocessing.resize {list(preprocessing.resize)} differs from "
                f"input height x width {model_input.height}x{model_input.width}"
            )
        for name in ("mean", "std"):
            values = getattr(preprocessing, name)
            if len(values) != facts.channels:
                raise UserInputError(
                    f"{where}: field preprocessing.{name} has {len(values)} values but the data "
                    f"has {facts.channels} channels"
                )
    return document.resolved(input=model_input, preprocessing=preprocessing, labels=labels)


_target_words = {
    "classification": "integer class labels",
    "regression": "float regression targets",
    "embedding": "texts (text:, jsonl: or csv: data) for a sentence-embedding teacher",
}


def _labels(document: RecipeDocument, table: SampleTable, where: str) -> list[str]:
    """Class names; for regression, the outputs' names."""
    if table.outputs is not None:
        names = document.labels or table.class_names or _output_names(table.outputs)
        if len(names) != table.outputs:
            raise UserInputError(
                f"{where}: field labels names {len(names)} outputs but the data's targets "
                f"have {table.outputs}"
            )
        return list(names)
    count = int(table.labels.max()) + 1
    found = table.class_names
    if document.labels is None:
        return list(found) if found else [str(i) for i in range(count)]
    if found is not None and list(document.labels) != list(found):
        raise UserInputError(
            f"{where}: field labels {document.labels} differs from the classes the data "
            f"names ({found}, in label order)"
        )
    if len(document.labels) < count:
        raise UserInputError(
            f"{where}: field labels names {len(document.labels)} classes but the data uses "
            f"labels 0..{count - 1}"
        )
    return list(document.labels)


def _output_names(count: int) -> list[str]:
    return [f"y{i}" for i in range(count)] if count > 1 else ["y"]


def _default_preprocessing(document: RecipeDocument, table: SampleTable, train_rows):
    import numpy as np

    facts = table.facts
    if facts.kind == "ready":
        assert facts.height is not None and facts.width is not None
        return identity_preprocessing(facts.channels, (facts.height, facts.width), table.source)
    if document.input is not None:
        size = (document.input.height, document.input.width)
    elif facts.height is not None and facts.width is not None:
        size = (facts.height, facts.width)
    else:
        raise UserInputError(
            f"task {document.name}: the images differ in size; give input height/width or "
            "preprocessing.resize"
        )
    rng = np.random.default_rng(document.data.split.seed)
    count = min(STAT_SAMPLES, len(train_rows))
    rows = np.sort(rng.choice(train_rows, size=count, replace=False))
    return default_preprocessing(
        [table.read(int(row)) for row in rows],
        facts.channels,
        size,
        facts.unit_scale,
        facts.channel_order,
        table.source,
    )


def load_recipe(name_or_path: str, flag: str = "--task") -> TaskRecipe:
    """A complete recipe; fields the file leaves to the data are read from the data."""
    document = read_recipe(name_or_path, flag)
    if document.is_complete():
        return document.resolved()
    return resolve_task(document).recipe
