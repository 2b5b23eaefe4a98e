"""`distill.init: teacher`: a text student starts from its transformer teacher's weights
(DistilBERT-style), the built-in teacher read in BERT's naming."""

from __future__ import annotations

import json

import pytest
import torch

from edgedistill.distill.teacher_init import initialise_from_teacher
from edgedistill.students import build_student, parse_student
from edgedistill.students.transformer import as_bert_state
from tests.conftest import TESTS, invoke

SHAPE, CLASSES = (12,), 3


def model(spec: str, seed: int):
    torch.manual_seed(seed)
    return build_student(parse_student(spec), SHAPE, CLASSES).eval()


def test_a_student_of_the_teachers_shape_copied_whole_computes_what_the_teacher_does():
    teacher = model("tfm:l=2,h=32,a=2,i=64,v=50", seed=0)
    student = model("tfm:l=2,h=32,a=2,i=64,v=50", seed=1)
    ids = torch.randint(1, 50, (4, *SHAPE))
    assert not torch.allclose(student(ids), teacher(ids))
    note = initialise_from_teacher(student, teacher)
    assert "teacher layers 0, 1 of 2 copied" in note
    torch.testing.assert_close(student(ids), teacher(ids), rtol=0, atol=1e-6)
    assert set(as_bert_state(teacher.state_dict())) >= {
        "embeddings.word_embeddings.weight",
        "encoder.layer.1.attention.self.query.weight",
        "classifier.weight",
    }


def test_a_shallower_student_takes_every_kth_layer_and_a_narrower_one_starts_fresh():
    teacher = model("tfm:l=4,h=32,a=2,i=64,v=50", seed=0)
    shallow = model("tfm:l=2,h=32,a=2,i=64,v=50", seed=1)
    assert "teacher layers 1, 3 of 4 copied" in initialise_from_teacher(shallow, teacher)
    torch.testing.assert_close(
        shallow.layers[1].output.weight, teacher.layers[3].output.weight, rtol=0, atol=0
    )
    narrow = model("tfm:l=2,h=16,a=1,i=32,v=50", seed=1)
    before = {k: v.clone() for k, v in narrow.state_dict().items()}
    assert "starts fresh" in initialise_from_teacher(narrow, teacher)
    assert all(torch.equal(before[k], v) for k, v in narrow.state_dict().items())


def test_an_image_student_is_left_as_it_is_with_a_note():
    student = build_student(parse_student("mbv2:d=1,r=16,w=0.25"), (1, 32, 32), 10)
    assert "starts fresh" in initialise_from_teacher(student, None)


def test_distill_records_what_the_student_took_from_its_teacher(tmp_path):
    pytest.importorskip("transformers", reason="text tasks need the text extra")
    recipe = tmp_path / "init.yaml"
    text = (TESTS / "data" / "tiny_fortunes.yaml").read_text()
    recipe.write_text(text.replace("  loss: kd\n", "  init: teacher\n  loss: kd\n"))
    out = tmp_path / "run"
    result = invoke(
        "distill", "--task", str(recipe), "--student", "tfm:l=1,h=64", "--epochs", "1",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (stage,) = json.loads((out / "result.json").read_text())["stages"]
    assert "teacher layers 1 of 2 copied (DistilBERT)" in stage["init"]
