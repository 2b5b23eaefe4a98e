"""The texts of `builtin:fortunes`, a text classification task from Debian's `fortunes` package:
which category file a short fortune comes from (`apt-get install fortunes`; no download).

Each category is one file in /usr/share/games/fortunes ($EDGEDISTILL_FORTUNES_DIR overrides it);
its entries are separated by lines holding only `%`. An entry becomes one text:
- backspace overstrikes are resolved to the letter printed last (`_` backspace `I` is `I`),
  other control characters dropped;
- the attribution is dropped: from the first line that starts with `--` (after indentation) to
  the end of the entry (`-- Spock, "The Ultimate Computer", stardate 4731.3` and its continuation
  lines), so that the label is learnt from what a fortune says, not from who said it;
- lines are joined and runs of whitespace collapsed to one space;
- texts over MAX_CHARS characters are left out (short texts train a small model fast), as are
  empty ones; a text twice in one category is kept once, a text in two categories is left out
  of both (its label would be ambiguous).
Texts come category by category (sorted by name), each in file order. text.py turns them into
the TextTable of `builtin:fortunes` (BUILTIN_TEXTS).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgedistill.errors import UserInputError

FORTUNES_DIR_ENV = "EDGEDISTILL_FORTUNES_DIR"
FORTUNES_DIR = Path("/usr/share/games/fortunes")
SOURCE = "builtin:fortunes"
# Distinct topics with enough short entries: 723 / 125 / 463 / 553 texts at MAX_CHARS in
# fortunes 1:1.99.1-7.3 (Debian 12).
CATEGORIES = ("computers", "love", "men-women", "politics")
MAX_CHARS = 150
SEPARATOR = "%"
ATTRIBUTION = "--"
_OVERSTRIKE = re.compile(r"[^\x08]\x08")  # a character followed by a backspace: printed over
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # \t and \n are whitespace, kept until joined


@dataclass
class Fortunes:
    """Short fortunes, each labelled by its category; `lines[i]` is the line text i starts on in
    its category's file. `identity` is the sha256 of the categories, texts and labels."""

    folder: Path
    texts: list[str]
    labels: list[str]  # the category of each text
    lines: list[int]
    identity: str
    notes: list[str] = field(default_factory=list)


def fortunes_dir() -> Path:
    """The folder of category files: $EDGEDISTILL_FORTUNES_DIR or Debian's."""
    override = os.environ.get(FORTUNES_DIR_ENV)
    return Path(override).expanduser() if override else FORTUNES_DIR


def clean_entry(lines: list[str]) -> str:
    """One entry's lines as one text: overstrikes resolved, attribution dropped, whitespace
    collapsed ("" when nothing is left)."""
    kept = []
    for line in lines:
        if line.lstrip().startswith(ATTRIBUTION):
            break
        kept.append(line)
    text = "\n".join(kept)
    while "\b" in text:
        resolved = _OVERSTRIKE.sub("", text)
        if resolved == text:  # a backspace with nothing before it
            resolved = text.replace("\b", "")
        text = resolved
    return " ".join(_CONTROL.sub("", text).split())


def split_entries(lines: list[str]) -> list[tuple[str, int]]:
    """The cleaned, non-empty entries of a category file's lines, each with the line (1-based)
    it starts on."""
    entries: list[tuple[str, int]] = []
    entry: list[str] = []
    start = 1
    for number, line in enumerate(lines, start=1):
        if line.rstrip() == SEPARATOR:
            entries.append((clean_entry(entry), start))
            entry, start = [], number + 1
        else:
            entry.append(line)
    entries.append((clean_entry(entry), start))
    return [(text, line) for text, line in entries if text]


def read_fortunes(
    folder: Path | None = None,
    categories: tuple[str, ...] = CATEGORIES,
    max_chars: int = MAX_CHARS,
    what: str = "--data",
) -> Fortunes:
    """The texts of `categories` of at most `max_chars` characters, from `folder` (default:
    fortunes_dir()); a missing folder or file is a UserInputError naming it and the package."""
    if not categories:
        raise UserInputError(f"{what}: {SOURCE}: no categories to read")
    folder = fortunes_dir() if folder is None else folder
    found = _category_files(folder, categories, what)
    per_category: dict[str, list[tuple[str, int]]] = {}
    notes: list[str] = []
    for name in sorted(categories):
        per_category[name], note = _short_entries(found[name], max_chars, what)
        notes.append(f"{name}: {note}")
    in_categories = Counter(text for entries in per_category.values() for text, _ in entries)
    shared = {text for text, count in in_categories.items() if count > 1}
    if shared:
        notes.append(f"left out {len(shared)} text(s) found in more than one category")
    kept = [
        (text, name, line)
        for name, entries in per_category.items()
        for text, line in entries
        if text not in shared
    ]
    empty = sorted(set(categories) - {name for _, name, _ in kept})
    if empty:
        raise UserInputError(
            f"{what}: {SOURCE}: no entries of at most {max_chars} characters in "
            + ", ".join(str(found[name]) for name in empty)
        )
    texts, labels, lines = (list(column) for column in zip(*kept, strict=True))
    content = json.dumps([sorted(categories), texts, labels]).encode("utf-8")
    return Fortunes(
        folder=folder,
        texts=texts,
        labels=labels,
        lines=lines,
        identity=f"{SOURCE}:{hashlib.sha256(content).hexdigest()}",
        notes=notes,
    )


def _short_entries(path: Path, max_chars: int, what: str) -> tuple[list[tuple[str, int]], str]:
    """The entries of one category file of at most `max_chars` characters, each once (with the
    line it first starts on), and a note of what was left out."""
    entries = split_entries(_read_lines(path, what))
    first_line: dict[str, int] = {}
    for text, line in entries:
        if len(text) <= max_chars:
            first_line.setdefault(text, line)
    short = sum(len(text) <= max_chars for text, _ in entries)
    note = (
        f"{len(first_line)} of {len(entries)} entries ({len(entries) - short} over "
        f"{max_chars} characters, {short - len(first_line)} repeated)"
    )
    return list(first_line.items()), note


def _read_lines(path: Path, what: str) -> list[str]:
    """The lines of a UTF-8 file, line endings removed; a problem names the file (and line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"{what}: {SOURCE}: {path}: cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserInputError(f"{what}: {SOURCE}: {path}: line {line}: not UTF-8") from None
    return [line.removesuffix("\r") for line in text.split("\n")]


def _category_files(folder: Path, categories: tuple[str, ...], what: str) -> dict[str, Path]:
    """The file of each category; a missing folder or file names it and the apt package."""
    install = (
        "install Debian's fortunes package (apt-get install fortunes) or set "
        f"{FORTUNES_DIR_ENV} to a folder of fortune files"
    )
    if not folder.is_dir():
        raise UserInputError(f"{what}: {SOURCE}: no folder {folder}; {install}")
    missing = [name for name in categories if not (folder / name).is_file()]
    if missing:
        raise UserInputError(
            f"{what}: {SOURCE}: {folder} has no category file {', '.join(missing)}; {install}"
        )
    return {name: folder / name for name in categories}
