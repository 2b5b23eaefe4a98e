"""The transformer (text) student family: spec and search space, the module against a real
transformers BERT, DistilBERT-style initialisation from it, its cost by hand, ONNX export."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgedistill.errors import UserInputError
from edgedistill.export import EXPORTERS
from edgedistill.inputs import Vocabulary
from edgedistill.latency.transformer_cost import EncoderShape, transformer_cost
from edgedistill.students.candidate import Candidate
from edgedistill.students.transformer import (
    TransformerFamily,
    enumerate_text_space,
    init_from_teacher,
    spread_layers,
    student_cost,
)

VOCAB, SEQ_LEN, PAD = 100, 16, 0
FAMILY = TransformerFamily()


def student(layers=2, hidden=32, heads=4, intermediate=64, outputs=3, **options):
    from edgedistill.students.transformer import TransformerStudent

    torch.manual_seed(0)
    module = TransformerStudent(
        VOCAB, SEQ_LEN, layers, hidden, heads, intermediate, outputs, **options
    )
    return module.eval()


def token_ids(batch=3, length=SEQ_LEN, seed=1):
    """Random ids with trailing padding of different lengths (row 0 is not padded)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, length), generator=generator)
    for row in range(1, batch):
        ids[row, length - 3 * row :] = PAD
    return ids


# --- spec and search space ----------------------------------------------------------------------


def test_spec_fills_heads_and_intermediate_from_the_hidden_size():
    full = FAMILY.canonical(Candidate.parse("tfm:l=4,h=256,v=3000"))
    assert full.knobs == {"l": 4, "h": 256, "a": 4, "i": 1024, "v": 3000, "p": 0}
    assert full.spec == "tfm:a=4,h=256,i=1024,l=4,p=0,v=3000"
    assert FAMILY.canonical(Candidate.parse(full.spec)) == full


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("tfm:l=2,h=100,a=3,v=99", "divides h=100"),
        ("tfm:l=2,v=99", "missing h"),
        ("tfm:l=2,h=64", "missing v"),
        ("tfm:l=2,h=64,w=1,v=99", "unknown w"),
        ("tfm:l=0,h=64,v=99", "l must be"),
        ("tfm:l=1,h=64,v=99,p=99", "p must be an id below v=99"),
    ],
)
def test_bad_specs_are_refused_naming_the_knob(spec, named):
    with pytest.raises(UserInputError, match=named):
        FAMILY.validate(Candidate.parse(spec))


def test_text_space_is_a_few_dozen_valid_candidates():
    space = enumerate_text_space(SEQ_LEN, Vocabulary(VOCAB))
    assert 24 <= len(space) <= 60 and len({c.spec for c in space}) == len(space)
    for candidate in space:
        knobs = FAMILY.canonical(candidate).knobs
        assert 1 <= knobs["l"] <= 6 and 64 <= knobs["h"] <= 384
        assert knobs["h"] % knobs["a"] == 0 and knobs["i"] in (2 * knobs["h"], 4 * knobs["h"])
        assert knobs["v"] == VOCAB and knobs["p"] == 0
    assert list(FAMILY.space((SEQ_LEN,), Vocabulary(VOCAB))) == space
    assert list(FAMILY.space((SEQ_LEN,))) == [], "no vocabulary: no text candidates"


def test_an_image_shape_gets_no_text_candidates_and_cannot_build_one():
    assert list(FAMILY.space((1, 32, 32), Vocabulary(VOCAB))) == []
    candidate = Candidate.parse(f"tfm:l=1,h=32,a=2,i=64,v={VOCAB}")
    with pytest.raises(UserInputError, match=r"shape \(L,\)"):
        FAMILY.build(candidate, (1, 32, 32), 10)
    with pytest.raises(UserInputError, match="missing v"):
        FAMILY.build(Candidate.parse("tfm:l=1,h=32"), (SEQ_LEN,), 10)


def test_family_builds_a_classifier_over_token_ids():
    module = FAMILY.build(Candidate.parse(f"tfm:l=1,h=32,a=2,i=64,v={VOCAB}"), (SEQ_LEN,), 5)
    assert module.eval()(token_ids()).shape == (3, 5)


@pytest.mark.parametrize(
    ("student_layers", "teacher_layers", "expected"),
    [
        (2, 4, [1, 3]),
        (6, 12, [1, 3, 5, 7, 9, 11]),
        (3, 4, [0, 2, 3]),
        (1, 4, [3]),
        (4, 4, [0, 1, 2, 3]),
    ],
)
def test_default_mapping_spreads_student_layers_over_the_teacher(
    student_layers, teacher_layers, expected
):
    assert spread_layers(student_layers, teacher_layers) == expected


# --- the module ---------------------------------------------------------------------------------


def test_features_give_every_hidden_state_and_attention_map():
    module, ids = student(), token_ids()
    with torch.no_grad():
        found = module.features(ids)
    assert len(found["hidden_states"]) == 3 and len(found["attentions"]) == 2
    assert all(h.shape == (3, SEQ_LEN, 32) for h in found["hidden_states"])
    assert found["embeddings"] is found["hidden_states"][0]
    probs = found["attentions"][1]
    assert probs.shape == (3, 4, SEQ_LEN, SEQ_LEN)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 4, SEQ_LEN))
    assert (probs[2, :, :, SEQ_LEN - 6 :] == 0).all(), "padding keys get no attention"
    assert torch.equal(found["output"], module(ids))


def test_embedding_head_is_a_masked_mean_and_ignores_padding():
    module = student(head="embed", pooling="mean")
    ids = token_ids()
    with torch.no_grad():
        last = module.features(ids)["hidden_states"][-1]
        embedding = module(ids)
        real = ids[2] != PAD
        assert torch.allclose(embedding[2], last[2][real].mean(0), atol=1e-6)
        shorter = module(ids[2:3, : int(real.sum())].contiguous())  # the same text, no padding
    assert torch.allclose(embedding[2], shorter[0], atol=1e-5)


def test_embedding_head_projects_and_normalises():
    module = student(head="embed", embed_dim=24, normalize=True)
    with torch.no_grad():
        embedding = module(token_ids())
    assert embedding.shape == (3, 24)
    assert torch.allclose(embedding.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_attention_uses_no_fused_attention_module():
    kinds = {type(m).__name__ for m in student().modules()}
    assert "MultiheadAttention" not in kinds and "Softmax" in kinds


# --- initialisation from a transformers BERT ---------------------------------------------------


def bert_config(layers=4, hidden=32, heads=4, intermediate=64, **extra):
    transformers = pytest.importorskip("transformers")
    return transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=32,
        pad_token_id=PAD,
        attn_implementation="eager",
        **extra,
    )


def roughen(model):
    """Weights far from BERT's small initialisation (std 0.02, under which attention is nearly
    uniform and logits nearly equal), so that a wrongly copied tensor shows in the outputs;
    token-type rows included, so that folding them into the positions is tested."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "LayerNorm.weight" in name:
                parameter.normal_(mean=1.0, std=0.1)
            else:
                parameter.normal_(std=0.3 if parameter.dim() > 1 else 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def bert():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(3)
    return roughen(transformers.BertModel(bert_config()))


def bert_outputs(model, ids):
    with torch.no_grad():
        return model(
            input_ids=ids,
            attention_mask=(ids != PAD).long(),
            output_hidden_states=True,
            output_attentions=True,
        )


def test_full_depth_copy_reproduces_every_hidden_state_and_attention_map(bert):
    module, ids = student(layers=4), token_ids()
    report = init_from_teacher(module, bert.state_dict(), 4)
    assert report.mapping == (0, 1, 2, 3) and not report.fresh
    teacher = bert_outputs(bert, ids)
    with torch.no_grad():
        mine = module.features(ids)
    for ours, theirs in zip(mine["hidden_states"], teacher.hidden_states, strict=True):
        assert (ours - theirs).abs().max().item() < 1e-5
    for ours, theirs in zip(mine["attentions"], teacher.attentions, strict=True):
        assert (ours - theirs).abs().max().item() < 1e-5


def test_every_kth_layer_copy_reproduces_the_copied_layers(bert):
    module, ids = student(layers=2), token_ids()
    report = init_from_teacher(module, bert.state_dict(), 4)
    assert report.mapping == (1, 3) and "1, 3" in report.note
    teacher = bert_outputs(bert, ids)
    bias = ((ids == PAD).float() * -10000.0)[:, None, None, :]
    with torch.no_grad():
        embedded = module.features(ids)["embeddings"]
        assert (embedded - teacher.hidden_states[0]).abs().max().item() < 1e-5
        for mine, theirs in enumerate(report.mapping):
            # the student layer, fed what the teacher layer was fed, answers what it answered
            out = module.layers[mine](teacher.hidden_states[theirs], bias)
            assert (out - teacher.hidden_states[theirs + 1]).abs().max().item() < 1e-5


def test_classifier_teacher_under_the_bert_prefix_gives_the_same_logits():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(4)
    teacher = roughen(
        transformers.BertForSequenceClassification(bert_config(layers=2, num_labels=3))
    )
    assert any(key.startswith("bert.") for key in teacher.state_dict())
    module, ids = student(layers=2, outputs=3), token_ids()
    report = init_from_teacher(module, teacher.state_dict(), 2, [0, 1])
    assert "classifier.weight" in report.copied and "pooler.weight" in report.copied
    with torch.no_grad():
        theirs = teacher(input_ids=ids, attention_mask=(ids != PAD).long()).logits
        assert (module(ids) - theirs).abs().max().item() < 1e-5


def test_mapping_naming_a_missing_teacher_layer_is_refused_listing_the_layers(bert):
    with pytest.raises(UserInputError, match=r"no layer 7.*0, 1, 2, 3"):
        init_from_teacher(student(layers=2), bert.state_dict(), 4, [1, 7])
    with pytest.raises(UserInputError, match=r"3 teacher layer\(s\) for 2 student"):
        init_from_teacher(student(layers=2), bert.state_dict(), 4, [0, 1, 2])


def test_narrower_student_starts_fresh_and_says_projections_are_learned(bert):
    module = student(layers=2, hidden=16, heads=2, intermediate=32)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    report = init_from_teacher(module, bert.state_dict(), 4)
    assert report.fresh and report.copied == () and report.mapping == ()
    assert "fresh" in report.note and "projection" in report.note
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_other_heads_count_copies_embeddings_only(bert):
    module = student(layers=2, heads=2)
    report = init_from_teacher(module, bert.state_dict(), 4, teacher_heads=4)
    assert report.fresh and "heads 2 vs 4" in report.note
    assert set(report.copied) == {
        "embeddings.word.weight",
        "embeddings.position.weight",
        "embeddings.norm.weight",
        "embeddings.norm.bias",
    }


# --- cost ---------------------------------------------------------------------------------------

# l=2, h=32, a=4, i=64, L=16, vocab 100, 3 classes, by hand:
#   per layer MACs: Q, K, V, out 4 * 16*32*32 = 65536; MLP 2 * 16*32*64 = 65536;
#   scores and weighted sum 2 * 16*16*32 = 16384  -> 147456, two layers 294912
#   head: pooler 32*32 = 1024 (first token), classifier 32*3 = 96 -> total 296032
#   params: word 100*32 = 3200, positions 16*32 = 512, LayerNorm 64 -> 3776
#     per layer: 4 * (32*32 + 32) = 4224, MLP 32*64+64 + 64*32+32 = 4192, 2 LayerNorms 128 -> 8544
#     pooler 32*32+32 = 1056, classifier 32*3+3 = 99 -> 3776 + 2*8544 + 1056 + 99 = 22019
HAND_MACS, HAND_PARAMS = 296032, 22019


def test_cost_matches_the_hand_count():
    shape = EncoderShape(2, 32, 4, 64, SEQ_LEN, VOCAB, 3)
    cost = transformer_cost(shape)
    assert cost.macs == HAND_MACS and cost.params == HAND_PARAMS
    assert cost.macs_of("matmul") == 2 * 2 * 16 * 16 * 32
    assert cost.macs_of("linear") == HAND_MACS - 2 * 2 * 16 * 16 * 32


def test_embedding_head_cost_by_hand():
    # l=1: layer 16*(4*32*32 + 2*32*64) + 2*16*16*32 = 147456; projection 32*24 = 768
    # params 3776 + 8544 + projection 32*24+24 = 792 -> 13112
    shape = EncoderShape(
        1, 32, 4, 64, SEQ_LEN, VOCAB, 3, head="embed", embed_dim=24, normalize=True
    )
    cost = transformer_cost(shape)
    assert (cost.macs, cost.params) == (147456 + 768, 13112)
    assert student_cost(student(layers=1, head="embed", embed_dim=24, normalize=True)) == cost


def test_attention_cost_grows_with_the_square_of_the_sequence_length():
    short, long = (
        transformer_cost(EncoderShape(1, 32, 4, 64, length, VOCAB, 3, max_len=64))
        for length in (16, 32)
    )
    assert long.macs_of("matmul") == 4 * short.macs_of("matmul")
    assert long.macs_of("linear") - 1120 == 2 * (short.macs_of("linear") - 1120)  # head: 1 token


def test_cost_agrees_with_the_built_module():
    module, ids = student(), token_ids(batch=1)
    cost = student_cost(module)
    assert cost.params == sum(p.numel() for p in module.parameters()) == HAND_PARAMS
    counted: dict[str, int] = {}
    handles = [
        layer.register_forward_hook(
            lambda m, inputs, output, name=name: counted.__setitem__(
                name, output.numel() * m.in_features
            )
        )
        for name, layer in module.named_modules()
        if isinstance(layer, nn.Linear)
    ]
    with torch.no_grad():
        module(ids)
    for handle in handles:
        handle.remove()
    by_name = {layer.name: layer for layer in cost.layers}
    assert counted == {name: by_name[name].macs for name in counted}
    assert set(counted) == {layer.name for layer in cost.layers if layer.op == "linear"}


def test_family_cost_is_the_module_cost():
    candidate = Candidate.parse(f"tfm:l=2,h=32,a=4,i=64,v={VOCAB}")
    assert FAMILY.cost(candidate, (SEQ_LEN,), 3).macs == HAND_MACS


# --- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["classify", "embed"])
def test_onnx_export_of_int64_ids_matches_pytorch(head, tmp_path):
    import onnx
    import onnxruntime as ort

    module = student(layers=1, hidden=16, heads=2, intermediate=32, head=head, normalize=True)
    example = token_ids(batch=1)
    path = tmp_path / "student.onnx"
    EXPORTERS.get("onnx").export(module, example, path, precision="fp32")
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert not {n.op_type for n in graph.node} & {"Attention", "MultiHeadAttention"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for ids in token_ids(batch=3, seed=5):
        batch = ids[None]
        (exported,) = session.run(None, {"input": batch.numpy()})
        with torch.no_grad():
            expected = module(batch).numpy()
        assert abs(exported - expected).max() < 1e-4
