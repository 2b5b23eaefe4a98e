"""Sentence-embedding distillation as a user runs it: texts without labels (`text:FILE`) and a
Hugging Face encoder saved as a sentence-transformers folder (`--teacher hf:DIR`); the student
learns the teacher's embeddings and is scored by its mean cosine to them and by how often its
nearest neighbour among the test texts is the teacher's. Plus the figures computed by hand."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import invoke, run_cli
from tests.text_fixtures import cue_texts, sentence_encoder

pytest.importorskip("transformers", reason="text tasks need the text extra")


# ---- the figures -----------------------------------------------------------------------------


def test_embedding_figures_match_a_hand_computation():
    import torch

    from edgedistill.tasks.kinds import TASK_KINDS

    kind = TASK_KINDS.get("embedding")
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    outputs = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    # cosines: 1, 1/sqrt(2), 1/sqrt(2)
    expected = (1 + 2 / math.sqrt(2)) / 3
    assert kind.score(outputs, targets) == pytest.approx(expected)
    # nearest other row by cosine (a tie goes to the first): targets 0->2, 1->2, 2->0;
    # outputs 0->1, 1->0, 2->1: no sample keeps its neighbour
    figures = kind.metrics(outputs, targets)
    assert figures["cosine"] == pytest.approx(expected)
    assert figures["neighbour_agreement"] == pytest.approx(0.0)
    assert kind.metrics(targets, targets)["neighbour_agreement"] == 1.0
    # the hard loss is 1 - cosine over the rows that carry a target
    partly = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")], [1.0, 1.0]])
    loss = kind.hard_loss(outputs, partly)
    assert float(loss) == pytest.approx(((1 - 1) + (1 - 1 / math.sqrt(2))) / 2)


def test_a_split_marked_embedding_is_scored_by_cosine_not_r2():
    import torch

    from edgedistill.tasks.data import Split, task_kind
    from edgedistill.tasks.evaluate import metrics

    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert task_kind(Split(x, x.clone())).name == "regression"
    split = Split(x, x.clone(), "embedding")
    assert task_kind(torch.utils.data.Subset(split, [0, 1])).name == "embedding"
    assert metrics(torch.nn.Identity(), split) == {"cosine": 1.0, "neighbour_agreement": 1.0}


def test_the_e_knob_gives_an_embedding_head_at_the_tasks_width():
    import torch

    from edgedistill.inputs import Vocabulary
    from edgedistill.students import (
        FAMILIES,
        Candidate,
        build_student,
        enumerate_space,
        parse_student,
        with_task_knobs,
    )

    vocabulary = Vocabulary(40, 0, embedding=True)
    filled = with_task_knobs(Candidate.parse("tfm:l=1,h=64"), vocabulary)
    assert filled.knobs["e"] == 1
    spec = parse_student(filled.spec).spec
    assert spec == "tfm:a=1,e=1,h=64,i=256,l=1,p=0,v=40"
    assert parse_student("tfm:l=1,h=64,v=40,e=0").spec == "tfm:a=1,h=64,i=256,l=1,p=0,v=40"
    student = build_student(parse_student(spec), (16,), 24).eval()
    assert student.head == "embed" and student(torch.randint(1, 40, (3, 16))).shape == (3, 24)
    assert all("e=1" in c.spec for c in enumerate_space((16,), vocabulary=vocabulary))
    cost = FAMILIES.get("tfm").cost(parse_student(spec), (16,), 24)
    assert cost.params == sum(p.numel() for p in student.parameters())
    with pytest.raises(Exception, match="e must be"):
        parse_student("tfm:l=1,h=64,v=40,e=2")


def test_an_export_is_judged_by_its_lowest_cosine_to_the_student():
    import numpy as np
    import torch

    from edgedistill.export.validate import Reference, compare_predictions, judge, tolerance_for
    from edgedistill.tasks.data import Split

    torch.manual_seed(0)
    student = torch.nn.Linear(4, 3).eval()
    x = torch.randn(20, 4)
    with torch.no_grad():
        teacher_embeddings = student(x) + 0.1 * torch.randn(20, 3)
    split = Split(x, teacher_embeddings, "embedding")
    reference = Reference.from_data(student, split, split)
    assert reference.embedding and tolerance_for("fp16", reference)["min_cosine"] == 0.999
    exact = compare_predictions(
        lambda a: student(torch.from_numpy(a)).detach().numpy(), reference, "t"
    )
    assert exact.min_cosine == pytest.approx(1.0) and exact.argmax_agreement is None
    assert exact.accuracy == pytest.approx(reference.student_accuracy, abs=1e-6)
    assert judge(exact, tolerance_for("fp16", reference), reference) == []
    rotated = compare_predictions(
        lambda a: np.roll(student(torch.from_numpy(a)).detach().numpy(), 1, axis=1), reference, "t"
    )
    problems = judge(rotated, tolerance_for("fp16", reference), reference)
    assert any("lowest cosine" in p for p in problems)


def test_a_sentence_transformers_folder_with_a_transformer_subfolder_gives_its_tokenizer(
    tmp_path,
):
    from edgedistill.tasks.task import load_task

    folder = sentence_encoder(tmp_path / "old-layout", sub="0_Transformer")
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(row["text"] + "\n" for row in cue_texts(40, seed=5)))
    task = load_task(None, f"text:{texts}", f"hf:{folder}")
    assert task.recipe.task_type == "embedding"
    assert task.recipe.preprocessing.tokenizer == str(folder / "0_Transformer")
    assert task.data.vocabulary.size == 20 and task.data.vocabulary.embedding


# ---- fit, end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    return sentence_encoder(tmp_path_factory.mktemp("st") / "encoder")


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("".join(row["text"] + "\n" for row in cue_texts(500, seed=3)))
    return path


def sentences_recipe(folder, texts, encoder_folder, length: int):
    """A recipe: the unlabeled texts, the encoder as teacher, `length` tokens per text."""
    recipe = folder / "sentences.yaml"
    document = {
        "name": "sentences",
        "data": {"source": f"text:{texts}"},
        "preprocessing": {"max_length": length},
        "teacher": {"source": f"hf:{encoder_folder}"},
    }
    recipe.write_text(json.dumps(document))
    return recipe


@pytest.fixture(scope="module")
def embedding_run(tmp_path_factory, encoder_folder, texts, text_budget_ms):
    """`fit --teacher hf:DIR --data text:FILE` (via a recipe at the suite's text length)."""
    root = tmp_path_factory.mktemp("embedding")
    recipe = sentences_recipe(root, texts, encoder_folder, 32)
    out = root / "run"
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", f"{text_budget_ms:g}ms", "--task", str(recipe),
        "--epochs", "4", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: the measured p90 missed the budget
    return result, out, json.loads(result.stdout)


def test_fit_distills_a_sentence_encoder_into_a_student_that_outputs_its_embedding(embedding_run):
    result, out, summary = embedding_run
    assert "Traceback" not in result.stderr
    assert summary["task"]["task_type"] == "embedding"
    assert summary["task"]["labels"] == [f"e{i}" for i in range(32)]  # the teacher's width
    student, teacher = summary["student"], summary["teacher"]
    assert student["metric"] == teacher["metric"] == "cosine"
    assert set(student["metrics"]) == {"cosine", "neighbour_agreement"}
    assert teacher["metrics"] == {"cosine": 1.0, "neighbour_agreement": 1.0}
    assert student["family"] == "tfm" and "e=1" in student["spec"]
    assert student["accuracy"] > 0.8, "the student points where the teacher's embeddings do"
    assert summary["retention"] == pytest.approx(student["accuracy"], abs=1e-6)
    assert teacher["form"] == "hf" and teacher["feeding"]["how"] == "tokenizer"
    assert any("sentence embeddings" in note for note in summary["notes"])
    onnx = next(a for a in summary["artifacts"] if a["format"] == "onnx")
    assert onnx["min_cosine"] > 0.9999 and onnx["argmax_agreement"] is None
    assert onnx["accuracy"] == pytest.approx(student["accuracy"], abs=1e-4)


def test_the_embedding_bundle_verifies_and_says_what_its_output_is(embedding_run):
    _, out, _ = embedding_run
    bundle = out / "bundle"
    check = run_cli("bundle", "verify", str(bundle), "--run")
    assert check.returncode == 0, check.stderr + check.stdout
    card = (bundle / "README.md").read_text()
    assert "a sentence embedding of 32 values" in card
    assert "Mean cosine to the teacher's embedding" in card
    assert (bundle / "tokenizer" / "tokenizer_config.json").is_file()
    assert not (bundle / "tokenizer" / "model.safetensors").exists()


def test_embedding_tasks_refuse_teachers_that_give_no_embeddings(encoder_folder, texts, tmp_path):
    # no teacher: the built-in one learns labels, and these texts have none
    result = invoke("fit", "--device", "host-cpu", "--budget", "5ms", "--data", f"text:{texts}",
                    "--out", str(tmp_path / "a"))  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "hf:DIR" in result.stderr and "sentence-embedding" in result.stderr
    # an encoder on labeled texts: the task type follows the teacher, so say how to get it
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("".join(json.dumps(row) + "\n" for row in cue_texts(60, seed=4)))
    result = invoke("fit", "--device", "host-cpu", "--budget", "5ms", "--data",
                    f"jsonl:{labeled}", "--teacher", f"hf:{encoder_folder}",
                    "--out", str(tmp_path / "b"))  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "sentence embeddings" in result.stderr and "task_type: embedding" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_hf_teachers_layers_are_matched_by_name_and_a_missing_one_is_listed(
    encoder_folder, texts, tmp_path
):
    """`distill` with the hidden-state term on a transformers encoder's own layer names (the
    losses given by repeating --loss, as well as comma-separated)."""
    recipe = sentences_recipe(tmp_path, texts, encoder_folder, 16)
    args = ("distill", "--task", str(recipe), "--student", "tfm:l=1,h=64",
            "--loss", "cosine-embedding", "--loss", "hidden-mse", "--epochs", "1")  # fmt: skip
    result = invoke(
        *args, "--layers", "layers.0=model.encoder.layer.1", "--out", str(tmp_path / "a")
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "a" / "result.json").read_text())
    assert [term["name"] for term in document["losses"]] == ["cosine-embedding", "hidden-mse"]
    missing = invoke(
        *args, "--layers", "layers.0=model.encoder.layer.7", "--out", str(tmp_path / "b")
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert (
        "model.encoder.layer.7" in missing.stderr
        and "model.encoder.layer.1 [16, 32]" in missing.stderr
    )


def test_an_hf_teachers_attention_maps_are_taps_an_attention_term_learns_from(
    encoder_folder, texts, tmp_path
):
    """Layer N's attention maps are `attentions.N` (transformers returns them in a tuple): the
    same maps as its own output, each row a distribution over the unpadded tokens; `distill`
    pairs a student layer's maps with them."""
    import torch

    from edgedistill.teachers.hf import load_hf_teacher
    from edgedistill.teachers.taps import FeatureTaps

    teacher = load_hf_teacher(encoder_folder)
    ids = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 11, 0, 0, 0]])
    taps = FeatureTaps(teacher, ["attentions.1"])
    with torch.no_grad():
        teacher(ids)
        maps = taps.outputs["attentions.1"]
        expected = teacher.features(ids)["attentions"][1]
    taps.remove()
    assert maps.shape == (2, teacher.info.num_heads, 6, 6) and torch.equal(maps, expected)
    assert torch.allclose(maps.sum(dim=-1), torch.ones(2, teacher.info.num_heads, 6))
    assert float(maps[1, :, :, 3:].abs().max()) < 1e-6, "no attention to padding"

    recipe = sentences_recipe(tmp_path, texts, encoder_folder, 16)
    result = invoke(
        "distill", "--task", str(recipe), "--student", "tfm:l=1,h=64,a=2", "--loss",
        "cosine-embedding", "--loss", "attention-kl", "--layers",
        "layers.0.attention.probs=attentions.1", "--epochs", "1", "--out", str(tmp_path / "a"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "a" / "result.json").read_text())
    assert [term["name"] for term in document["losses"]] == ["cosine-embedding", "attention-kl"]


@pytest.mark.parametrize(
    ("formats", "precision"),
    [(["onnx"], "fp16"), (["tflite"], "fp32"), (["tflite"], "fp16"), (["coreml"], "fp16")],
)
def test_an_embedding_student_exports_and_is_judged_by_cosine(formats, precision, tmp_path):
    """Each format an embedding student ships in, validated against the student's embeddings
    of texts whose targets are a teacher's embeddings (here: a fixed random projection)."""
    import torch

    from edgedistill.export.chain import export_chain
    from edgedistill.export.validate import Reference
    from edgedistill.inputs import example_input, random_input
    from edgedistill.students import build_student, parse_student
    from edgedistill.tasks.data import Split

    torch.manual_seed(0)
    student = build_student(parse_student("tfm:l=1,h=32,v=40,e=1"), (16,), 24).eval()
    ids = random_input((16,), 40, torch.Generator().manual_seed(1), vocab_size=40)
    with torch.no_grad():
        targets = student(ids) + 0.05 * torch.randn(40, 24)
    split = Split(ids, targets, "embedding")
    reference = Reference.from_data(student, split, split)
    artifacts = export_chain(
        formats, precision, student, example_input((16,)), tmp_path, None, reference=reference
    )
    artifact = artifacts[-1]
    assert artifact.format == formats[-1] and artifact.argmax_agreement is None
    if artifact.validation == "outputs":
        assert artifact.min_cosine >= artifact.tolerance.get("min_cosine", 0.9999)
        assert artifact.accuracy == pytest.approx(reference.student_accuracy, abs=0.01)
    else:  # Core ML off macOS: loads, with the declared int32 ids and output
        assert artifact.validation == "structural"
