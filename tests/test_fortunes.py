"""The built-in text task `builtin:fortunes` (Debian's fortunes category files as labels) and the
WordPiece tokenizer trained here for it: parsing, refusals, identity, a deterministic tokenizer
that transformers and teachers.hf.tokenize read alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgedistill.errors import UserInputError
from edgedistill.tasks.fortunes import (
    CATEGORIES,
    FORTUNES_DIR,
    FORTUNES_DIR_ENV,
    MAX_CHARS,
    read_fortunes,
)
from edgedistill.tasks.text import BUILTIN_TEXTS, read_text_source
from edgedistill.tasks.wordpiece import SPECIAL_TOKENS, train_wordpiece

HAS_FORTUNES = all((FORTUNES_DIR / name).is_file() for name in CATEGORIES)
needs_fortunes = pytest.mark.skipif(
    not HAS_FORTUNES,
    reason=f"Debian's fortunes package is not installed ({FORTUNES_DIR}; apt-get install "
    "fortunes, as .ci/run does)",
)

COMPUTERS = (
    "Real programmers\n"
    "  don't comment their code.\n"
    "%\n"
    "There are two ways to write error-free programs;\n"
    "only the third one works.\n"
    "\t\t-- Alan J. Perlis\n"
    "\t\t   Epigrams on Programming\n"
    "%\n"
    "Real programmers don't comment their code.\n"
    "%\n"
    "This entry is far too long to be kept by a table that takes at most sixty characters.\n"
    "%\n"
    "Calm down, it's *____\b\b\b\bonly* ones and zeroes.\x07\n"
    "%\n"
    "\t\t-- only an attribution\n"
    "%\n"
    "Shared by two categories.\n"
    "%\n"
)
POLITICS = "Shared by two categories.\n%\nAll diplomacy is war\nby other means.\n"  # no final %


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def test_entries_are_split_on_percent_lines_cleaned_and_labelled_by_category(tmp_path):
    folder = write_folder(tmp_path / "f", {"computers": COMPUTERS, "politics": POLITICS})

    fortunes = read_fortunes(folder, categories=("politics", "computers"), max_chars=60)

    assert fortunes.texts == [
        "Real programmers don't comment their code.",  # joined; its repetition kept once
        "Calm down, it's *only* ones and zeroes.",  # overstrike resolved, bell dropped
        "All diplomacy is war by other means.",
    ]
    assert fortunes.labels == ["computers", "computers", "politics"]
    assert fortunes.lines == [1, 13, 3]  # where each entry starts in its file
    assert fortunes.folder == folder
    assert "computers: 3 of 6 entries (2 over 60 characters, 1 repeated)" in fortunes.notes
    assert "left out 1 text(s) found in more than one category" in fortunes.notes


def test_attribution_and_its_continuation_lines_are_dropped(tmp_path):
    folder = write_folder(tmp_path / "f", {"computers": COMPUTERS, "politics": POLITICS})

    fortunes = read_fortunes(folder, categories=("computers", "politics"), max_chars=200)

    perlis = [text for text in fortunes.texts if text.startswith("There are two ways")]
    assert perlis == ["There are two ways to write error-free programs; only the third one works."]
    assert not any("--" in text or "Epigrams" in text for text in fortunes.texts)
    assert not any(char in text for text in fortunes.texts for char in "\t\n\b\x07")


def test_read_text_source_reads_builtin_fortunes_from_the_folder_the_environment_names(
    tmp_path, monkeypatch
):
    files = {name: f"A {name} fortune.\n%\nAnother {name} one.\n%\n" for name in CATEGORIES}
    monkeypatch.setenv(FORTUNES_DIR_ENV, str(write_folder(tmp_path / "fortunes", files)))

    table = read_text_source("builtin:fortunes", tmp_path)

    assert BUILTIN_TEXTS.names() == ["fortunes"]
    assert table.source == "builtin:fortunes"
    assert table.path == tmp_path / "fortunes"
    assert table.identity.startswith("builtin:fortunes:")
    assert table.class_names == sorted(CATEGORIES)
    assert np.bincount(table.labels).tolist() == [2] * len(CATEGORIES)
    assert table.texts[:2] == [f"A {CATEGORIES[0]} fortune.", f"Another {CATEGORIES[0]} one."]


def test_identity_is_stable_and_follows_the_content(tmp_path):
    folder = write_folder(tmp_path / "f", {"computers": COMPUTERS, "politics": POLITICS})
    categories = ("computers", "politics")
    first = read_fortunes(folder, categories, max_chars=60).identity

    assert first.startswith("builtin:fortunes:")
    assert read_fortunes(folder, categories, max_chars=60).identity == first
    assert read_fortunes(folder, categories, max_chars=200).identity != first  # more texts
    (folder / "politics").write_text(POLITICS + "%\nA new one.\n", encoding="utf-8")
    assert read_fortunes(folder, categories, max_chars=60).identity != first


def test_a_missing_folder_names_it_and_the_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(FORTUNES_DIR_ENV, str(tmp_path / "nowhere"))

    with pytest.raises(UserInputError) as raised:
        read_text_source("builtin:fortunes", tmp_path)

    message = str(raised.value)
    assert message.startswith("--data: builtin:fortunes: no folder ")
    assert str(tmp_path / "nowhere") in message
    assert "apt-get install fortunes" in message
    assert FORTUNES_DIR_ENV in message


def test_an_empty_folder_names_the_missing_category_files(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(FORTUNES_DIR_ENV, str(empty))

    with pytest.raises(UserInputError) as raised:
        read_text_source("builtin:fortunes", tmp_path, what="task.yaml: field data.source")

    message = str(raised.value)
    assert message.startswith("task.yaml: field data.source: builtin:fortunes: ")
    assert f"{empty} has no category file {', '.join(CATEGORIES)}" in message
    assert "apt-get install fortunes" in message


def test_a_category_with_no_short_entries_is_refused(tmp_path):
    folder = write_folder(tmp_path / "f", {"computers": COMPUTERS, "politics": "x" * 80 + "\n"})

    with pytest.raises(UserInputError, match="no entries of at most 60 characters in .*politics"):
        read_fortunes(folder, ("computers", "politics"), max_chars=60)


def test_an_unknown_builtin_text_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(UserInputError, match="did you mean fortunes"):
        read_text_source("builtin:fortune", tmp_path)


@needs_fortunes
def test_the_installed_package_gives_four_categories_of_short_distinct_texts(monkeypatch):
    monkeypatch.delenv(FORTUNES_DIR_ENV, raising=False)

    table = read_text_source("builtin:fortunes", Path.cwd())
    again = read_text_source("builtin:fortunes", Path.cwd())

    assert table.class_names == ["computers", "love", "men-women", "politics"]
    counts = np.bincount(table.labels, minlength=4)
    assert (counts >= 100).all(), counts  # 723 / 125 / 463 / 553 in fortunes 1:1.99.1-7.3
    assert 1500 <= len(table) <= 2500
    assert table.labels.tolist() == sorted(table.labels.tolist())  # category by category
    assert max(len(text) for text in table.texts) <= MAX_CHARS
    assert len(set(table.texts)) == len(table)
    assert not any(text != " ".join(text.split()) for text in table.texts)
    assert (again.identity, again.texts) == (table.identity, table.texts)


# ---- the WordPiece tokenizer ------------------------------------------------------------------

CORPUS = [
    "The cat sat on the mat.",
    "The dog sat on the log.",
    "Cats and dogs are friends; the cats sat first.",
    "A programmer sat at the terminal and programmed.",
    "Programmers program programs.",
    "Naïve cafés serve the dogs.",
] * 3


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory) -> Path:
    return train_wordpiece(CORPUS, tmp_path_factory.mktemp("wordpiece"), vocab_size=120)


def test_wordpiece_folder_has_the_hugging_face_files_and_bert_special_tokens(wordpiece):
    from tokenizers import Tokenizer

    assert {path.name for path in wordpiece.iterdir()} == {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
    tokenizer = Tokenizer.from_file(str(wordpiece / "tokenizer.json"))
    assert [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.get_vocab_size() <= 120
    assert any(token.startswith("##") for token in tokenizer.get_vocab())


def test_wordpiece_encodes_a_known_sentence_lowercased_between_cls_and_sep(wordpiece):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(wordpiece / "tokenizer.json"))
    encoding = tokenizer.encode("The CAT sat, naïvely!")

    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert encoding.tokens[1:4] == ["the", "cat", "sat"]
    assert encoding.ids == [tokenizer.token_to_id(token) for token in encoding.tokens]
    assert "[UNK]" in encoding.tokens  # "!" never appears in the corpus
    assert tokenizer.decode(tokenizer.encode("the cats sat on the mat.").ids) == (
        "the cats sat on the mat."
    )


def test_wordpiece_training_is_deterministic(wordpiece, tmp_path):
    again = train_wordpiece(CORPUS, tmp_path / "again", vocab_size=120)

    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (again / name).read_bytes() == (wordpiece / name).read_bytes(), name


def test_autotokenizer_and_hf_tokenize_agree_and_pad_with_zero(wordpiece):
    from transformers import AutoTokenizer

    from edgedistill.tasks.tokenizer import tokenize

    texts = ["The cat sat.", "Programmers program programs; the cats and the dogs sat on the mat."]
    tokenizer = AutoTokenizer.from_pretrained(str(wordpiece), local_files_only=True)
    expected = tokenizer(texts, padding="max_length", truncation=True, max_length=12)

    tokens = tokenize(texts, wordpiece, max_length=12)

    assert tokenizer.pad_token_id == 0
    assert tokens.input_ids.tolist() == expected["input_ids"]
    assert tokens.input_ids[0, -1].item() == 0  # the short text is padded with [PAD]
    assert tokens.truncated == 1  # the long one is cut


def test_wordpiece_refuses_no_texts(tmp_path):
    with pytest.raises(UserInputError, match="at least one text"):
        train_wordpiece([], tmp_path / "none")
