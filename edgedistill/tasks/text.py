"""Text data: `text:FILE`, `jsonl:FILE` and `csv:FILE` read into a TextTable, and its splits.

`text:FILE` holds one text per line (blank lines skipped), unlabeled. `jsonl:FILE` holds one
JSON object per line with a "text" field and an optional "label" (a string or an integer;
missing or null: unlabeled). `csv:FILE` has a header row with a `text` column and an optional
`label` column (an empty cell: unlabeled). Files are UTF-8 (a byte-order mark is allowed).
`builtin:NAME` is a built-in text task (BUILTIN_TEXTS: `builtin:fortunes`, tasks/fortunes.py).
Each format is one reader function registered in TEXT_SOURCES; what they share (finding and
decoding the file, naming the line of a problem, turning label names into class indices) is
here once. Splits are made as for images: seeded, stratified by label, unlabeled texts in
train; a table without labels (embedding distillation) is split at random.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from edgedistill.errors import UserInputError
from edgedistill.registry import Registry
from edgedistill.tasks.fortunes import read_fortunes
from edgedistill.tasks.splits import split_indices, stratified_split
from edgedistill.tasks.table import UNLABELED, SampleTable

if TYPE_CHECKING:
    import numpy as np

    from edgedistill.tasks.recipe import SplitSpec

TEXT_FIELD = "text"
LABEL_FIELD = "label"
_INTEGER = re.compile(r"-?\d+")


class TextRecord(NamedTuple):
    """One text as a reader found it: its label name (None: unlabeled) and its line (1-based)."""

    text: str
    label: str | None
    line: int


@dataclass(frozen=True)
class TextFile:
    """A text source's file, read once: what a reader parses, and how it names a problem."""

    path: Path
    data: bytes
    what: str  # "--data" or "RECIPE: field data.source"

    def text(self) -> str:
        """The file decoded as UTF-8 (a leading byte-order mark dropped)."""
        try:
            return self.data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = self.data[: exc.start].count(b"\n") + 1
            raise self.error(
                line,
                f"not UTF-8 (byte 0x{self.data[exc.start]:02x}); save the file as UTF-8",
            ) from None

    def lines(self) -> list[str]:
        """The decoded lines, line endings removed (line i + 1 of the file is lines()[i])."""
        return [line.removesuffix("\r") for line in self.text().split("\n")]

    def error(self, line: int | None, message: str) -> UserInputError:
        where = f"line {line}: " if line is not None else ""
        return UserInputError(f"{self.what}: {self.path}: {where}{message}")


TextReader = Callable[[TextFile], list[TextRecord]]
TEXT_SOURCES: Registry[TextReader] = Registry("text source")


@dataclass
class TextTable:
    """Every text a source holds; `labels[i]` is the class of text i (-1 when unlabeled), an
    index into `class_names`. `identity` is the sha256 of the format and the file's bytes
    (of a builtin:NAME table, of its class names, texts and labels)."""

    texts: list[str]
    labels: np.ndarray  # int64, N
    class_names: list[str]
    source: str  # the spec as given: csv:reviews.csv
    identity: str
    path: Path
    lines: list[int] = field(default_factory=list)  # the file line each text starts on
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def labeled(self) -> int:
        return int((self.labels >= 0).sum())


BUILTIN = "builtin"  # builtin:NAME: a text task whose data this machine has (tasks/fortunes.py)
BuiltinText = Callable[[str], TextTable]  # what ("--data", ...) -> the table
BUILTIN_TEXTS: Registry[BuiltinText] = Registry("built-in text")


def is_text_source(source: str) -> bool:
    """True for text:FILE, jsonl:FILE, csv:FILE and the built-in text tasks."""
    scheme, sep, argument = source.partition(":")
    return bool(sep) and (
        scheme in TEXT_SOURCES or (scheme == BUILTIN and argument in BUILTIN_TEXTS)
    )


def read_text_source(spec: str, base_dir: Path, what: str = "--data") -> TextTable:
    """The TextTable of `text:FILE`, `jsonl:FILE` or `csv:FILE` (or `builtin:NAME`); a relative
    FILE starts at `base_dir`. Every problem is a UserInputError naming the file and, where it
    has one, the line."""
    import numpy as np

    scheme, sep, argument = spec.partition(":")
    if sep and scheme == BUILTIN:
        return builtin_text(argument, what)
    if not sep or scheme not in TEXT_SOURCES:
        raise UserInputError(
            f"{what}: cannot read {spec!r} as text; expected text:FILE, jsonl:FILE or csv:FILE "
            f"({TEXT_SOURCES.unknown_message(scheme)})"
        )
    path = Path(argument).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not argument or not path.is_file():
        state = "is a folder" if path.is_dir() else "no such file"
        raise UserInputError(f"{what}: {spec}: {state} {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"{what}: {path}: cannot read it ({exc.strerror})") from None
    file = TextFile(path, data, what)
    if not data.strip():
        raise file.error(None, "the file is empty")
    records = TEXT_SOURCES.get(scheme)(file)
    if not records:
        raise file.error(None, "no texts found")
    class_names = _class_names({r.label for r in records if r.label is not None})
    index = {name: position for position, name in enumerate(class_names)}
    labels = np.array(
        [UNLABELED if r.label is None else index[r.label] for r in records], dtype=np.int64
    )
    table = TextTable(
        texts=[r.text for r in records],
        labels=labels,
        class_names=class_names,
        source=spec,
        identity=hashlib.sha256(scheme.encode() + b"\0" + data).hexdigest(),
        path=path,
        lines=[r.line for r in records],
    )
    unlabeled = len(table) - table.labeled
    if class_names and unlabeled:
        table.notes.append(f"{spec}: {unlabeled} of {len(table)} texts are unlabeled")
    return table


def builtin_text(name: str, what: str = "--data") -> TextTable:
    """The TextTable of `builtin:NAME`."""
    if name not in BUILTIN_TEXTS:
        raise UserInputError(f"{what}: {BUILTIN_TEXTS.unknown_message(name)}")
    return BUILTIN_TEXTS.get(name)(what)


@BUILTIN_TEXTS.register("fortunes")
def fortunes_table(what: str = "--data") -> TextTable:
    """`builtin:fortunes`: short fortunes labelled by their category (tasks/fortunes.py)."""
    import numpy as np

    fortunes = read_fortunes(what=what)
    class_names = sorted(set(fortunes.labels))
    index = {name: position for position, name in enumerate(class_names)}
    return TextTable(
        texts=fortunes.texts,
        labels=np.array([index[name] for name in fortunes.labels], dtype=np.int64),
        class_names=class_names,
        source=f"{BUILTIN}:fortunes",
        identity=fortunes.identity,
        path=fortunes.folder,
        lines=fortunes.lines,
        notes=fortunes.notes,
    )


def _class_names(names: set[str]) -> list[str]:
    """Sorted label names; numerically when every name is an integer (2 before 10)."""
    if names and all(_INTEGER.fullmatch(name) for name in names):
        return sorted(names, key=int)
    return sorted(names)


def _text_value(value: object, file: TextFile, line: int) -> str:
    if not isinstance(value, str):
        raise file.error(line, f'"{TEXT_FIELD}" must be a string, not {type(value).__name__}')
    if not value.strip():
        raise file.error(line, f'"{TEXT_FIELD}" is empty')
    return value


def _label_value(value: object, file: TextFile, line: int) -> str | None:
    """A label as its name: strings as given, integers as digits; None/"" unlabeled."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise file.error(
            line,
            f'"{LABEL_FIELD}" must be a string or an integer class, not {value!r} '
            "(regression targets are not supported for text)",
        )
    return str(value)


@TEXT_SOURCES.register("text")
def read_lines(file: TextFile) -> list[TextRecord]:
    """One text per line, unlabeled; blank lines skipped."""
    return [
        TextRecord(line, None, number)
        for number, line in enumerate(file.lines(), start=1)
        if line.strip()
    ]


@TEXT_SOURCES.register("jsonl")
def read_jsonl(file: TextFile) -> list[TextRecord]:
    """One JSON object per line: {"text": ..., "label": ...}; blank lines skipped."""
    records = []
    for number, line in enumerate(file.lines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise file.error(number, f"not valid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(item, dict):
            raise file.error(number, f'expected a JSON object with a "{TEXT_FIELD}" field')
        if TEXT_FIELD not in item:
            fields = ", ".join(item) or "none"
            raise file.error(number, f'no "{TEXT_FIELD}" field (fields: {fields})')
        text = _text_value(item[TEXT_FIELD], file, number)
        records.append(TextRecord(text, _label_value(item.get(LABEL_FIELD), file, number), number))
    return records


@TEXT_SOURCES.register("csv")
def read_csv(file: TextFile) -> list[TextRecord]:
    """Comma-separated, a header row naming a `text` column and optionally a `label` column;
    quoted cells may hold commas and line breaks; blank lines skipped."""
    reader = csv.reader(io.StringIO(file.text(), newline=""), strict=True)
    header: list[str] | None = None
    text_column, label_column = 0, None
    records: list[TextRecord] = []
    last_line = 0
    try:
        for row in reader:
            number, last_line = last_line + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [name.strip() for name in row]
                text_column, label_column = _columns(header, file, number)
                continue
            if len(row) != len(header):
                raise file.error(number, f"{len(row)} fields; the header has {len(header)}")
            text = _text_value(row[text_column], file, number)
            label = None if label_column is None else row[label_column].strip()
            records.append(TextRecord(text, _label_value(label, file, number), number))
    except csv.Error as exc:
        raise file.error(reader.line_num, f"not valid CSV ({exc})") from None
    return records


def _columns(header: list[str], file: TextFile, line: int) -> tuple[int, int | None]:
    """Positions of the text column and of the label column (None: no labels)."""
    for name in (TEXT_FIELD, LABEL_FIELD):
        if header.count(name) > 1:
            raise file.error(line, f"the header names column {name!r} twice")
    if TEXT_FIELD not in header:
        raise file.error(
            line, f"the header has no {TEXT_FIELD!r} column (columns: {', '.join(header)})"
        )
    label = header.index(LABEL_FIELD) if LABEL_FIELD in header else None
    return header.index(TEXT_FIELD), label


# ---- splits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LabelsOnly:
    """What split_indices reads of a SampleTable: labels, source, no given split, no targets."""

    source: str
    labels: np.ndarray
    assignment: None = None
    targets: None = None


def split_texts(
    table: TextTable, spec: SplitSpec, stratify: bool = True
) -> tuple[dict[str, np.ndarray], dict]:
    """Rows of train / val / test and a record of how they were made. With labels (and
    `stratify`): the image tasks' seeded stratified split, unlabeled texts in train. Without
    labels, or `stratify=False` (embedding distillation, which needs none): a seeded random
    split of every text."""
    import numpy as np

    if stratify and table.labeled:
        view = _LabelsOnly(table.source, table.labels)
        return split_indices(cast(SampleTable, view), spec)
    parts = dict(
        zip(
            ("train", "val", "test"),
            stratified_split(np.zeros(len(table), dtype=np.int64), spec.train, spec.val, spec.seed),
            strict=True,
        )
    )
    for name, rows in parts.items():
        if not len(rows):
            raise UserInputError(
                f"{table.source}: the {name} split would be empty ({len(table)} texts); add "
                "texts or change the split fractions"
            )
    test_fraction = 1 - spec.train - spec.val
    record = {
        "method": f"random {spec.train:g}/{spec.val:g}/{test_fraction:g}, seed {spec.seed}",
        "sizes": {name: int(len(rows)) for name, rows in parts.items()},
        "unlabeled_in_train": int((table.labels[parts["train"]] < 0).sum()),
        "seed": spec.seed,
    }
    return parts, record
