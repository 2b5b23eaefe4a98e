"""Hugging Face teachers from a local folder (hf:PATH): a tiny random BERT built here from a
config (no download), saved as a classifier, a bare encoder and a sentence-transformers folder,
read, loaded offline, run, and refused where a file is missing or would be unpickled."""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgedistill.errors import UserInputError
from edgedistill.tasks.tokenizer import hf_folder, is_hf_source, tokenize
from edgedistill.teachers.hf import inspect_hf_folder, load_hf_teacher
from tests.text_fixtures import sentence_transformers_files

# fmt: off
WORDS = [
    "the", "a", "cat", "dog", "bird", "sat", "ran", "flew", "on", "under", "mat", "rug", "tree",
    "house", "red", "blue", "green", "big", "small", "fast", "slow", "happy", "sad", "very",
    "not", "good", "bad", "today",
]
# fmt: on
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LABELS = ["negative", "neutral", "positive"]
PAD, CLS, SEP = 0, 2, 3


def write_vocabulary(folder: Path) -> Path:
    """vocab.txt + tokenizer_config.json, as a BERT tokenizer reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    transformers = pytest.importorskip("transformers", reason="needs the text extra")
    import torch

    root = tmp_path_factory.mktemp("hf")
    vocabulary = write_vocabulary(root / "vocabulary")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(vocabulary), local_files_only=True)
    config = transformers.BertConfig(
        vocab_size=len(SPECIAL + WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    classifier = transformers.BertForSequenceClassification(config).eval()
    encoder = transformers.BertModel(config).eval()
    for model, name in ((classifier, "classifier"), (encoder, "encoder")):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return SimpleNamespace(
        root=root,
        vocabulary=vocabulary,
        tokenizer=tokenizer,
        classifier=classifier,
        encoder=encoder,
        classifier_folder=root / "classifier",
        encoder_folder=root / "encoder",
    )


def token_ids():
    """Two texts of 5 and 3 tokens, padded to 8."""
    import torch

    return torch.tensor(
        [[CLS, 5, 6, 7, SEP, PAD, PAD, PAD], [CLS, 8, SEP, PAD, PAD, PAD, PAD, PAD]]
    )


def sentence_transformers_folder(hf, folder: Path, pooling: str, normalize: bool, sub: str = ""):
    """The encoder as sentence-transformers saves it: modules.json, 1_Pooling/config.json and,
    when it normalises, 2_Normalize."""
    hf.encoder.save_pretrained(folder / sub)
    hf.tokenizer.save_pretrained(folder / sub)
    (folder / sub / "sentence_bert_config.json").write_text('{"max_seq_length": 48}')
    sentence_transformers_files(folder, sub, pooling, normalize, 32)
    return folder


def last_hidden(hf, ids):
    import torch

    with torch.no_grad():
        return hf.encoder(input_ids=ids, attention_mask=(ids != PAD).long()).last_hidden_state


def test_hf_sources_name_a_folder(tmp_path):
    assert is_hf_source("hf:models/bert") and not is_hf_source("teacher.py:build")
    assert hf_folder("hf:models/bert", tmp_path) == tmp_path / "models" / "bert"
    assert hf_folder("hf:/abs/bert", tmp_path) == Path("/abs/bert")


def test_a_sequence_classifier_is_a_classification_teacher_with_its_labels(hf):
    info = inspect_hf_folder(hf.classifier_folder)

    assert info.task_type == "classification"
    assert info.architecture == "BertForSequenceClassification"
    assert info.labels == LABELS and info.output_size == 3
    assert (info.hidden_size, info.num_layers, info.num_heads) == (32, 2, 2)
    assert (info.vocab_size, info.max_positions, info.pad_token_id) == (len(SPECIAL + WORDS), 64, 0)
    assert info.pooling is None and info.weights == ["model.safetensors"]


def test_classification_logits_equal_the_transformers_model_given_the_same_mask(hf):
    import torch

    from edgedistill.teachers.hf import HFTeacherModule

    teacher = load_hf_teacher(f"{hf.classifier_folder}")
    ids = token_ids()

    logits = teacher(ids)
    with torch.no_grad():
        expected = hf.classifier(input_ids=ids, attention_mask=(ids != PAD).long()).logits

    assert isinstance(teacher, HFTeacherModule)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_a_bare_encoder_is_an_embedding_teacher_with_unnormalised_mean_pooling(hf):
    info = inspect_hf_folder(hf.encoder_folder)

    assert info.task_type == "embedding" and info.architecture == "BertModel"
    assert (info.pooling, info.normalize, info.output_size) == ("mean", False, 32)
    assert any("mean of the last hidden states" in note for note in info.notes)


def test_mean_pooling_is_the_average_of_the_token_states_without_padding(hf):
    import torch

    ids = token_ids()
    hidden = last_hidden(hf, ids)
    by_hand = torch.stack([hidden[0, :5].mean(dim=0), hidden[1, :3].mean(dim=0)])

    embedding = load_hf_teacher(hf.encoder_folder)(ids)

    torch.testing.assert_close(embedding, by_hand, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("pooling", "normalize", "sub"),
    [("cls", True, ""), ("max", False, ""), ("mean", True, "0_Transformer")],
)
def test_sentence_transformers_folders_pool_and_normalise_as_declared(
    hf, tmp_path, pooling, normalize, sub
):
    import torch

    folder = sentence_transformers_folder(hf, tmp_path / "st", pooling, normalize, sub)
    ids = token_ids()
    hidden = last_hidden(hf, ids)
    lengths = (5, 3)
    by_hand = torch.stack(
        [
            {
                "cls": hidden[row, 0],
                "max": hidden[row, :n].max(dim=0).values,
                "mean": hidden[row, :n].mean(dim=0),
            }[pooling]
            for row, n in enumerate(lengths)
        ]
    )
    if normalize:
        by_hand = by_hand / by_hand.norm(dim=1, keepdim=True)

    info = inspect_hf_folder(folder)
    embedding = load_hf_teacher(folder)(ids)

    assert (info.task_type, info.pooling, info.normalize) == ("embedding", pooling, normalize)
    assert info.max_seq_length == 48 and info.model_folder == folder / sub
    assert not info.notes
    torch.testing.assert_close(embedding, by_hand, rtol=0, atol=1e-6)
    if normalize:
        torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_features_hold_every_layer_the_attention_maps_and_the_embedding_output(hf):
    import torch

    teacher = load_hf_teacher(hf.classifier_folder)
    ids = token_ids()

    features = teacher.features(ids)

    assert len(features["hidden_states"]) == 3  # embedding output + 2 layers
    assert all(h.shape == (2, 8, 32) for h in features["hidden_states"])
    assert len(features["attentions"]) == 2
    assert all(a.shape == (2, 2, 8, 8) for a in features["attentions"])
    assert features["embeddings"] is features["hidden_states"][0]
    torch.testing.assert_close(features["output"], teacher(ids))
    assert features["attention_mask"].tolist()[1] == [1, 1, 1, 0, 0, 0, 0, 0]
    attention = features["attentions"][0]
    torch.testing.assert_close(attention.sum(dim=-1), torch.ones(2, 2, 8))
    assert attention[1, :, :, 3:].abs().max() < 1e-6  # padding is never attended to


def test_inputs_longer_than_the_position_embeddings_are_refused(hf):
    import torch

    teacher = load_hf_teacher(hf.encoder_folder)
    with pytest.raises(UserInputError, match="at most 64"):
        teacher(torch.full((1, 65), 5))


def test_sharded_safetensors_load_like_one_file(hf, tmp_path):
    import torch

    hf.encoder.save_pretrained(tmp_path, max_shard_size="20KB")
    hf.tokenizer.save_pretrained(tmp_path)

    info = inspect_hf_folder(tmp_path)

    assert info.weights[0] == "model.safetensors.index.json" and len(info.weights) > 2
    torch.testing.assert_close(
        load_hf_teacher(tmp_path)(token_ids()), load_hf_teacher(hf.encoder_folder)(token_ids())
    )
    (tmp_path / info.weights[-1]).unlink()
    with pytest.raises(UserInputError, match=f"{info.weights[-1]} is missing"):
        inspect_hf_folder(tmp_path)


@pytest.mark.parametrize(
    ("removed", "named"),
    [
        (["config.json"], "config.json is missing"),
        (["model.safetensors"], "model.safetensors is missing"),
        (["tokenizer.json", "tokenizer_config.json"], "tokenizer.json is missing"),
    ],
)
def test_a_folder_missing_a_file_is_refused_naming_it(hf, tmp_path, removed, named):
    folder = shutil.copytree(hf.encoder_folder, tmp_path / "model")
    for name in removed:
        (folder / name).unlink()

    with pytest.raises(UserInputError) as raised:
        load_hf_teacher(f"{folder}")

    assert named in str(raised.value)
    assert f"{folder} is not a Hugging Face model folder" in str(raised.value)


def test_a_vocabulary_without_its_tokenizer_config_is_refused(hf, tmp_path):
    folder = write_vocabulary(tmp_path / "tok")
    (folder / "tokenizer_config.json").unlink()
    with pytest.raises(UserInputError, match="tokenizer_config.json is missing"):
        tokenize(["the cat"], folder, 8)


def test_a_path_that_is_not_a_folder_is_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(UserInputError, match="is a file"):
        inspect_hf_folder(tmp_path / "model.bin")
    with pytest.raises(UserInputError, match="does not exist"):
        inspect_hf_folder(tmp_path / "nowhere")


class _WritesMarker:
    """Unpickling this creates the marker file (what a malicious pytorch_model.bin could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_weights_are_refused_without_being_unpickled(hf, tmp_path):
    live = tmp_path / "proof"
    pickle.loads(pickle.dumps(_WritesMarker(live))).close()
    assert live.exists()  # the payload does run when unpickled
    folder = shutil.copytree(hf.encoder_folder, tmp_path / "model")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_WritesMarker(marker)))

    with pytest.raises(UserInputError) as raised:
        load_hf_teacher(folder)

    assert "pytorch_model.bin" in str(raised.value) and "never unpickles" in str(raised.value)
    assert not marker.exists()


def test_a_classifier_without_its_head_weights_is_refused(hf, tmp_path):
    folder = shutil.copytree(hf.classifier_folder, tmp_path / "model")
    shutil.copy(hf.encoder_folder / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(UserInputError, match="no weights for classifier.bias"):
        load_hf_teacher(folder)


def test_a_model_that_needs_its_own_code_is_refused(hf, tmp_path):
    folder = shutil.copytree(hf.encoder_folder, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserInputError, match="trust_remote_code"):
        inspect_hf_folder(folder)


def test_unsupported_sentence_transformers_modules_and_poolings_are_refused(hf, tmp_path):
    folder = sentence_transformers_folder(hf, tmp_path / "st", "mean", normalize=False)
    pooling = folder / "1_Pooling" / "config.json"
    flags = json.loads(pooling.read_text())
    pooling.write_text(json.dumps(flags | {"pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(UserInputError, match=r"1_Pooling/config.json: pooling_mode_mean_sqrt"):
        inspect_hf_folder(folder)
    pooling.write_text(json.dumps(flags | {"pooling_mode_cls_token": True}))
    with pytest.raises(UserInputError, match="exactly one of"):
        inspect_hf_folder(folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UserInputError, match=r"modules.json: modules Transformer, Pooling, Dense"):
        inspect_hf_folder(folder)


def test_loading_runs_with_the_hub_offline_and_restores_it(hf, monkeypatch):
    import huggingface_hub.constants as hub
    import transformers

    seen = []
    original = transformers.AutoModel.from_pretrained

    def recording(*args, **kwargs):
        seen.append((hub.HF_HUB_OFFLINE, kwargs.get("local_files_only")))
        return original(*args, **kwargs)

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", recording)

    load_hf_teacher(hf.encoder_folder)

    assert seen == [(True, True)]
    assert hub.HF_HUB_OFFLINE is False


@pytest.mark.parametrize("layout", ["vocabulary", "classifier_folder"])
def test_tokenize_pads_to_max_length_and_counts_the_texts_cut(hf, layout):
    import torch

    texts = ["the cat sat", "a very very very big happy dog ran fast today", "Bird", "zebra"]

    tokens = tokenize(texts, getattr(hf, layout), max_length=8)

    assert tokens.input_ids.shape == (4, 8) and tokens.input_ids.dtype == torch.int64
    assert tokens.truncated == 1
    cat, long, bird, unknown = tokens.input_ids.tolist()
    assert cat[:5] == [CLS, 5, 7, 10, SEP] and cat[5:] == [PAD] * 3
    assert long[0] == CLS and long[-1] == SEP and PAD not in long
    assert bird[:3] == [CLS, 9, SEP]  # lower-cased
    assert unknown[:3] == [CLS, 1, SEP]
    assert tokenize([], hf.vocabulary, 8).input_ids.shape == (0, 8)


def test_tokenize_refuses_a_length_over_the_tokenizers_limit(hf):
    with pytest.raises(UserInputError, match="model_max_length 64"):
        tokenize(["the cat"], hf.vocabulary, 65)


def test_a_missing_transformers_install_names_the_extra(tmp_path, monkeypatch):
    folder = write_vocabulary(tmp_path / "tok")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(UserInputError, match=r"pip install 'edgedistill\[text\]'"):
        tokenize(["the cat"], folder, 8)
