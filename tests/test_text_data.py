"""Text data sources (text:FILE, jsonl:FILE, csv:FILE): parsing, refusals that name the file
and line, and seeded stratified splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgedistill.errors import UserInputError
from edgedistill.tasks.recipe import SplitSpec
from edgedistill.tasks.text import TEXT_SOURCES, read_text_source, split_texts


def write(folder, name: str, content: str | bytes):
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_the_three_formats_are_registered():
    assert TEXT_SOURCES.names() == ["csv", "jsonl", "text"]


def test_text_file_is_one_unlabeled_text_per_line_blank_lines_skipped(tmp_path):
    write(tmp_path, "lines.txt", "first text\n\n   \nsecond, with a comma\r\nthird\n")

    table = read_text_source("text:lines.txt", tmp_path)

    assert table.texts == ["first text", "second, with a comma", "third"]
    assert table.labels.tolist() == [-1, -1, -1]
    assert table.labels.dtype == np.int64
    assert table.class_names == []
    assert table.lines == [1, 4, 5]
    assert table.source == "text:lines.txt"


def test_jsonl_labels_become_sorted_class_indices_and_missing_labels_unlabeled(tmp_path):
    rows = [
        {"text": "great", "label": "pos"},
        {"text": "awful", "label": "neg"},
        {"text": "meh"},
        {"text": "fine", "label": None, "extra": 1},
        {"text": "lovely", "label": "pos"},
    ]
    write(tmp_path, "reviews.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")

    table = read_text_source("jsonl:reviews.jsonl", tmp_path)

    assert table.class_names == ["neg", "pos"]
    assert table.labels.tolist() == [1, 0, -1, -1, 1]
    assert table.labeled == 3
    assert any("2 of 5 texts are unlabeled" in note for note in table.notes)


def test_integer_labels_sort_numerically(tmp_path):
    rows = [{"text": f"t{label}", "label": label} for label in (10, 2, 1, 2)]
    write(tmp_path, "numbers.jsonl", "\n".join(json.dumps(r) for r in rows))

    table = read_text_source("jsonl:numbers.jsonl", tmp_path)

    assert table.class_names == ["1", "2", "10"]
    assert table.labels.tolist() == [2, 1, 0, 1]


def test_csv_reads_text_and_label_columns_with_quotes_and_a_byte_order_mark(tmp_path):
    content = (
        "\ufeffid,text,label\r\n"
        '1,"hello, world",greeting\r\n'
        '2,"two\nlines",other\r\n'
        "\r\n"
        "3,no label here,\r\n"
    )
    write(tmp_path, "data.csv", content)

    table = read_text_source("csv:data.csv", tmp_path)

    assert table.texts == ["hello, world", "two\nlines", "no label here"]
    assert table.class_names == ["greeting", "other"]
    assert table.labels.tolist() == [0, 1, -1]
    assert table.lines == [2, 3, 6]


def test_csv_without_a_label_column_is_unlabeled(tmp_path):
    write(tmp_path, "plain.csv", "text\nalpha\nbeta\n")
    table = read_text_source("csv:plain.csv", tmp_path)
    assert table.texts == ["alpha", "beta"]
    assert table.labels.tolist() == [-1, -1]


def test_identity_changes_with_the_content_and_the_format(tmp_path):
    path = write(tmp_path, "a.txt", "text\none\n")
    first = read_text_source(f"text:{path}", tmp_path).identity
    assert read_text_source("text:a.txt", tmp_path).identity == first
    assert read_text_source("csv:a.txt", tmp_path).identity != first
    path.write_text("text\ntwo\n")
    assert read_text_source("text:a.txt", tmp_path).identity != first


@pytest.mark.parametrize(
    ("spec", "content", "expected"),
    [
        ("text:missing.txt", None, "no such file"),
        ("text:empty.txt", "", "the file is empty"),
        ("text:blank.txt", "\n  \n", "the file is empty"),
        ("jsonl:bad.jsonl", '{"text": "ok"}\n\n{"text": oops}\n', "line 3: not valid JSON"),
        ("jsonl:list.jsonl", '{"text": "ok"}\n["a"]\n', "line 2: expected a JSON object"),
        ("jsonl:nofield.jsonl", '{"body": "x", "label": 1}\n', 'line 1: no "text" field'),
        ("jsonl:number.jsonl", '{"text": 5}\n', 'line 1: "text" must be a string'),
        ("jsonl:emptytext.jsonl", '{"text": "a"}\n{"text": "  "}\n', 'line 2: "text" is empty'),
        ("jsonl:float.jsonl", '{"text": "a", "label": 0.5}\n', 'line 1: "label" must be'),
        ("csv:nocolumn.csv", "body,label\nx,1\n", "line 1: the header has no 'text' column"),
        ("csv:fields.csv", "text,label\na,1\nb,2,extra\n", "line 3: 3 fields; the header has 2"),
        ("csv:quote.csv", 'text,label\n"a"b,1\n', "line 2: not valid CSV"),
        ("text:latin1.txt", b"fine\ncaf\xe9\n", "line 2: not UTF-8 (byte 0xe9)"),
    ],
)
def test_bad_text_sources_are_refused_naming_the_file_and_line(tmp_path, spec, content, expected):
    name = spec.partition(":")[2]
    if content is not None:
        write(tmp_path, name, content)

    with pytest.raises(UserInputError) as raised:
        read_text_source(spec, tmp_path)

    message = str(raised.value)
    assert message.startswith("--data: ")
    assert name in message
    assert expected in message


def test_an_unknown_format_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(UserInputError, match="did you mean jsonl"):
        read_text_source("json:data.json", tmp_path)


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "texts").mkdir()
    with pytest.raises(UserInputError, match="is a folder"):
        read_text_source("text:texts", tmp_path)


def labeled_table(tmp_path, per_class: dict[str, int], unlabeled: int = 0):
    rows = [
        {"text": f"{name} {i}", "label": name} for name, n in per_class.items() for i in range(n)
    ]
    rows += [{"text": f"free {i}"} for i in range(unlabeled)]
    write(tmp_path, "split.jsonl", "\n".join(json.dumps(r) for r in rows))
    return read_text_source("jsonl:split.jsonl", tmp_path)


def test_splits_are_stratified_seeded_and_keep_unlabeled_texts_in_train(tmp_path):
    table = labeled_table(tmp_path, {"a": 40, "b": 20, "c": 20}, unlabeled=7)
    spec = SplitSpec(train=0.5, val=0.25, seed=3)

    parts, record = split_texts(table, spec)

    labels = table.labels
    for name, expected in (("train", (20, 10, 10)), ("val", (10, 5, 5)), ("test", (10, 5, 5))):
        counts = np.bincount(labels[parts[name]][labels[parts[name]] >= 0], minlength=3)
        assert tuple(counts) == expected, name
    assert (labels[parts["train"]] < 0).sum() == 7
    assert (labels[parts["val"]] >= 0).all() and (labels[parts["test"]] >= 0).all()
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(table)))
    assert "stratified" in record["method"] and record["unlabeled_in_train"] == 7
    again, _ = split_texts(table, spec)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other, _ = split_texts(table, SplitSpec(train=0.5, val=0.25, seed=4))
    assert not np.array_equal(parts["test"], other["test"])


def test_unlabeled_texts_are_split_at_random(tmp_path):
    write(tmp_path, "free.txt", "\n".join(f"line {i}" for i in range(20)))
    table = read_text_source("text:free.txt", tmp_path)

    parts, record = split_texts(table, SplitSpec(train=0.7, val=0.15, seed=0))

    assert {name: len(rows) for name, rows in parts.items()} == {"train": 14, "val": 3, "test": 3}
    assert record["method"].startswith("random")
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(20))


def test_labels_can_be_ignored_for_a_random_split(tmp_path):
    table = labeled_table(tmp_path, {"a": 10, "b": 10}, unlabeled=4)
    parts, record = split_texts(table, SplitSpec(), stratify=False)
    assert record["method"].startswith("random")
    assert sum(len(rows) for rows in parts.values()) == 24


def test_too_few_texts_for_a_split_are_refused(tmp_path):
    write(tmp_path, "two.txt", "one\ntwo\n")
    table = read_text_source("text:two.txt", tmp_path)
    with pytest.raises(UserInputError, match="split would be empty"):
        split_texts(table, SplitSpec())


def test_a_single_labeled_class_is_refused_by_the_stratified_split(tmp_path):
    table = labeled_table(tmp_path, {"only": 10})
    with pytest.raises(UserInputError, match="at least two"):
        split_texts(table, SplitSpec())
