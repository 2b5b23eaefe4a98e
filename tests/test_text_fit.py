"""`fit` on text, as a user runs it: the built-in fortunes task (a WordPiece vocabulary learned
from its train split, a transformer teacher trained here) and a Hugging Face classifier teacher
given as hf:DIR with jsonl data, each from the data to a bundle whose ONNX file, tokenizer and
model-card code work outside edgedistill."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_TEXT_RECIPE, run_cli
from tests.text_fixtures import CUES, cue_texts, cue_word_tokenizer

pytest.importorskip("transformers", reason="text tasks need the text extra")

MAJORITY_SHARE = 0.39  # of the test split (politics)


@pytest.fixture(scope="module")
def fortunes_run(tmp_path_factory, text_budget_ms):
    out = tmp_path_factory.mktemp("text") / "run"
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", f"{text_budget_ms:g}ms",
        "--task", str(TINY_TEXT_RECIPE), "--epochs", "6", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: the measured p90 missed the budget
    return result, out, json.loads(result.stdout)


def test_fortunes_fit_distills_a_transformer_student_over_token_ids(fortunes_run):
    _, out, summary = fortunes_run
    student, teacher = summary["student"], summary["teacher"]
    assert student["family"] == "tfm" and teacher["form"] == "builtin"
    vocabulary = summary["task"]["preprocessing"]["vocabulary"]
    assert student["arch"]["v"] == vocabulary and student["arch"]["p"] == 0
    assert summary["task"]["input_shape"] == [1, 32]
    assert teacher["accuracy"] > MAJORITY_SHARE + 0.2, "the teacher learned the categories"
    assert student["accuracy"] > MAJORITY_SHARE + 0.1, "the student learned from it"
    assert summary["retention"] == pytest.approx(student["accuracy"] / teacher["accuracy"])
    (onnx,) = [a for a in summary["artifacts"] if a["format"] == "onnx"]
    assert onnx["argmax_agreement"] == 1.0 and onnx["max_abs_diff"] < 1e-4
    assert onnx["accuracy"] == pytest.approx(student["accuracy"])
    search = json.loads((out / "search.json").read_text())
    assert all(c["family"] == "tfm" for c in search["candidates"])
    assert len(search["candidates"]) >= 24


def test_text_bundle_ships_its_tokenizer_and_verifies(fortunes_run):
    _, out, _ = fortunes_run
    bundle = out / "bundle"
    preprocessing = json.loads((bundle / "preprocessing.json").read_text())
    assert preprocessing["tokenizer"] == "tokenizer/" and preprocessing["max_length"] == 32
    assert (bundle / "tokenizer" / "tokenizer.json").is_file()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["input"]["dtype"] == "int64" and manifest["input"]["shape"] == [1, 32]
    assert "tokenizer/tokenizer.json" in {entry["path"] for entry in manifest["files"]}
    verified = run_cli("bundle", "verify", str(bundle), "--run")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_model_cards_python_code_tokenizes_and_runs_the_onnx(fortunes_run):
    _, out, _ = fortunes_run
    bundle = out / "bundle"
    card = (bundle / "README.md").read_text()
    code = next(
        block
        for block in re.findall(r"```python\n(.*?)```", card, flags=re.S)
        if "onnxruntime" in block
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=bundle, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\[[0-3]\]", result.stdout.strip()), result.stdout


def test_text_tasks_refuse_image_settings(tmp_path):
    """(int8 text students are built: tests/test_text_int8_fit.py.)"""
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", "1ms", "--task", str(TINY_TEXT_RECIPE),
        "--teacher-preprocess", "unit", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--teacher-preprocess" in result.stderr and "tokenizer" in result.stderr


# A Hugging Face classifier trained in the test on texts whose label is told by one word, and
# jsonl data of the same kind: `fit --teacher hf:DIR --data jsonl:FILE` tokenizes with the
# teacher's own tokenizer and distills it.


@pytest.fixture(scope="module")
def hf_teacher(tmp_path_factory) -> Path:
    import torch
    import transformers

    root = tmp_path_factory.mktemp("hf-teacher")
    tokenizer = cue_word_tokenizer(root)
    labels = list(CUES)
    torch.manual_seed(0)  # the initial weights too: the teacher is the same in every run
    model = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
        )
    )
    rows = cue_texts(300, seed=1)
    batch = tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")
    targets = torch.tensor([labels.index(r["label"]) for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(100):
        loss = model(**batch, labels=targets).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    folder = root / "classifier"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_hf_teacher_fit_uses_the_teachers_tokenizer_and_distills_it(
    hf_teacher, tmp_path, text_budget_ms
):
    """A recipe naming the jsonl data and the hf:DIR teacher (at the suite's text input length,
    so that the host's text calibration is reused)."""
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in cue_texts(600, seed=2)))
    recipe = tmp_path / "reviews.yaml"
    recipe.write_text(
        json.dumps(
            {
                "name": "reviews",
                "data": {"source": "jsonl:reviews.jsonl"},
                "preprocessing": {"max_length": 32},
                "teacher": {"source": f"hf:{hf_teacher}"},
            }
        )
    )
    out = tmp_path / "run"
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", f"{text_budget_ms:g}ms", "--task", str(recipe),
        "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    summary = json.loads(result.stdout)
    assert summary["teacher"]["form"] == "hf" and summary["teacher"]["source"] == f"hf:{hf_teacher}"
    assert summary["teacher"]["feeding"]["how"] == "tokenizer"
    assert summary["task"]["labels"] == ["negative", "neutral", "positive"]
    assert summary["task"]["preprocessing"]["tokenizer"] == str(hf_teacher)
    assert summary["teacher"]["accuracy"] > 0.9, "the teacher, fed its own ids, knows the cue"
    assert summary["student"]["family"] == "tfm" and summary["student"]["accuracy"] > 0.6
    assert (out / "bundle" / "tokenizer" / "tokenizer_config.json").is_file()
    assert not (out / "bundle" / "tokenizer" / "model.safetensors").exists()


def test_hf_teacher_on_images_or_with_other_labels_is_refused(hf_teacher, tmp_path):
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", "5ms", "--teacher", f"hf:{hf_teacher}",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "images" in result.stderr
    data = tmp_path / "other.jsonl"
    data.write_text(
        "".join(json.dumps({"text": f"text {i}", "label": f"k{i % 2}"}) + "\n" for i in range(40))
    )
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", "5ms", "--teacher", f"hf:{hf_teacher}",
        "--data", f"jsonl:{data}", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "3 classes" in result.stderr and "k0" in result.stderr
