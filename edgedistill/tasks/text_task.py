"""A text task made ready: texts read and split, the tokenizer found (or learned from the
train split), every text tokenized once, and the recipe completed with the input length and
the ids the tokenizer produces.

The tokenizer is, in order: the recipe's `preprocessing.tokenizer` folder; the teacher's own
(an `hf:DIR` teacher's folder: its ids are what it was trained on); else a WordPiece vocabulary
learned here from the train texts only (tasks/wordpiece.py, deterministic), cached by the texts
and the vocabulary size. Without `max_length` the input holds the 95th percentile of the train
texts' token counts, rounded up to a multiple of 8.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.hashing import sha256_file
from edgedistill.inputs import Vocabulary
from edgedistill.paths import cache_dir
from edgedistill.tasks.data import Split, TaskData
from edgedistill.tasks.recipe import TokenInput, Tokenization
from edgedistill.tasks.text import (
    TextTable,
    read_text_source,
    split_texts,
)
from edgedistill.tasks.tokenizer import (
    VOCABULARIES,
    encode,
    hf_folder,
    hf_model_folder,
    is_hf_source,
    load_tokenizer,
    vocabulary_of,
)
from edgedistill.tasks.wordpiece import train_wordpiece

if TYPE_CHECKING:
    import numpy as np

    from edgedistill.tasks.recipe import RecipeDocument, TaskRecipe

log = logging.getLogger(__name__)

LENGTH_QUANTILE = 0.95  # of the train texts' token counts, when max_length is not given
LENGTH_STEP = 8
MAX_DEFAULT_LENGTH = 512
# An embedding task's one output name until its teacher tells the embedding's width
EMBEDDING_LABEL = "embedding"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def resolve_text(document: RecipeDocument, where: str) -> tuple[TaskRecipe, TaskData]:
    """The complete recipe and the tokenized splits of a text task."""
    import torch

    table = read_text_source(document.data.source, document.data.base_dir, where)
    task_type = document.task_type or ("classification" if table.labeled else "embedding")
    if task_type == "regression":
        raise UserInputError(
            f"task {document.name}: field task_type is regression, but text tasks are "
            "classification (a label per text) or embedding (the teacher's sentence embeddings)"
        )
    if task_type == "classification" and not table.labeled:
        raise UserInputError(
            f"{where}: {table.source} has no labels, and a classification task learns them; "
            "give a `label` column (jsonl:, csv:), or distill a sentence-embedding teacher "
            "(task_type: embedding, --teacher hf:DIR), which needs none"
        )
    if document.input is not None and not isinstance(document.input, TokenInput):
        raise UserInputError(
            f"task {document.name}: field input describes images; a text task's input is "
            "token ids ({length: N}, or leave it out and set preprocessing.max_length)"
        )
    if document.preprocessing is not None and not isinstance(document.preprocessing, Tokenization):
        raise UserInputError(
            f"task {document.name}: field preprocessing describes images; a text task's is its "
            "tokenization (tokenizer, vocab_size, max_length)"
        )
    given = document.preprocessing or Tokenization()
    parts, record = split_texts(table, document.data.split)
    train_texts = [table.texts[int(row)] for row in parts["train"]]
    folder = _tokenizer_folder(document, given, train_texts)
    tokenizer = load_tokenizer(folder, where)
    vocabulary = vocabulary_of(tokenizer)
    length = _length(document, given, tokenizer, train_texts)
    tokenized = encode(tokenizer, table.texts, length, folder, where)
    notes = list(table.notes)
    if tokenized.truncated:
        notes.append(
            f"{tokenized.truncated} of {len(table)} texts are longer than {length} tokens and "
            "were cut (preprocessing.max_length)"
        )
    embedding = task_type == "embedding"
    if embedding:  # the teacher's embeddings become the targets (teachers/embedding_targets.py)
        if table.labeled:
            notes.append(f"{table.source}: its labels are not used (a sentence-embedding task)")
        targets = torch.full((len(table), 1), float("nan"))
    else:
        targets = torch.from_numpy(table.labels)
    splits = {
        name: Split(
            tokenized.input_ids[rows].contiguous(),
            targets[rows].clone(),
            "embedding" if embedding else None,
        )
        for name, rows in parts.items()
    }
    learned = given.tokenizer is None and not is_hf_source(document.teacher.source)
    tokenization = Tokenization(
        description=given.description or _description(learned, length, vocabulary),
        tokenizer=str(folder),
        vocab_size=given.vocab_size,
        max_length=length,
        vocabulary=vocabulary.size,
        pad_id=vocabulary.pad_id,
    )
    recipe = document.for_task_type(task_type).resolved(
        input=TokenInput(name=_input_name(document), length=length),
        preprocessing=tokenization,
        labels=[EMBEDDING_LABEL] if embedding else _labels(document, table),
    )
    record = {**record, "in_memory": True, "truncated": tokenized.truncated}
    data = TaskData(
        splits["train"],
        splits["val"],
        splits["test"],
        fingerprint=_fingerprint(table, parts, folder, length),
        input_shape=(length,),
        split=record,
        source=document.data.source,
        notes=tuple(notes),
        vocabulary=replace(vocabulary, embedding=embedding),
    )
    return recipe, data


def _input_name(document: RecipeDocument) -> str:
    return document.input.name if isinstance(document.input, TokenInput) else "input_ids"


def _labels(document: RecipeDocument, table: TextTable) -> list[str]:
    if document.labels is not None and list(document.labels) != table.class_names:
        raise UserInputError(
            f"task {document.name}: field labels {document.labels} differs from the labels the "
            f"data names ({table.class_names}, sorted)"
        )
    if len(table.class_names) < 2:
        raise UserInputError(
            f"{table.source}: only one label ({table.class_names}); classification needs two"
        )
    return list(table.class_names)


def _tokenizer_folder(document: RecipeDocument, given: Tokenization, texts: list[str]) -> Path:
    if given.tokenizer is not None:
        folder = Path(given.tokenizer).expanduser()
        return folder if folder.is_absolute() else document.data.base_dir / folder
    if is_hf_source(document.teacher.source):
        assert document.teacher.source is not None
        return hf_model_folder(hf_folder(document.teacher.source, document.teacher.base_dir))
    digest = hashlib.sha256(json.dumps([given.vocab_size, texts]).encode()).hexdigest()[:16]
    folder = cache_dir() / "tokenizers" / f"wordpiece-{digest}"
    if not all((folder / name).is_file() for name in TOKENIZER_FILES):
        log.info("learning a WordPiece vocabulary from %d train texts", len(texts))
        train_wordpiece(texts, folder, vocab_size=given.vocab_size)
    return folder


def _length(document, given: Tokenization, tokenizer, texts: list[str]) -> int:
    if isinstance(document.input, TokenInput):
        if given.max_length is not None and given.max_length != document.input.length:
            raise UserInputError(
                f"task {document.name}: field input.length {document.input.length} differs "
                f"from preprocessing.max_length {given.max_length}"
            )
        return document.input.length
    if given.max_length is not None:
        return given.max_length
    counts = sorted(len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"])
    quantile = counts[min(len(counts) - 1, math.ceil(LENGTH_QUANTILE * len(counts)) - 1)]
    return min(MAX_DEFAULT_LENGTH, max(LENGTH_STEP, -(-quantile // LENGTH_STEP) * LENGTH_STEP))


def tokenizer_files(folder: Path) -> list[Path]:
    """The files of `folder` that make its tokenizer (not a teacher's weights beside them)."""
    names = {*TOKENIZER_FILES, *VOCABULARIES, "merges.txt", "added_tokens.json"}
    return sorted(path for path in folder.iterdir() if path.name in names and path.is_file())


def _description(learned: bool, length: int, vocabulary: Vocabulary) -> str:
    origin = "a WordPiece vocabulary learned from the train split" if learned else "the tokenizer"
    return (
        f"{origin} ({vocabulary.size} ids, lowercased as the tokenizer says), each text padded "
        f"with id {vocabulary.pad_id} or cut to {length} tokens"
    )


def _fingerprint(table: TextTable, parts: dict[str, np.ndarray], folder: Path, length: int) -> str:
    import numpy as np

    digest = hashlib.sha256()
    digest.update(table.identity.encode())
    digest.update(np.ascontiguousarray(table.labels, dtype=np.int64).tobytes())
    for rows in parts.values():
        digest.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    for path in tokenizer_files(folder):
        digest.update(f"{path.name}:{sha256_file(path)}".encode())
    digest.update(json.dumps(["tokens", length]).encode())
    return digest.hexdigest()
