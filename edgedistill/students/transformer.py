"""BERT-style encoder students for token ids (Devlin et al. 2019): initialised from the teacher's
embeddings and every k-th layer when the widths match (DistilBERT, Sanh et al. 2019), else fresh,
learning the teacher's hidden states through projections (TinyBERT, Jiao et al. 2020).

Knobs (spec `tfm:a=4,h=256,i=1024,l=4,p=0,v=3157`):
  l  encoder layers
  h  hidden size
  a  attention heads, dividing h (default h/64, at least 1)
  i  MLP intermediate size (default 4h)
  v  vocabulary size (the task's tokenizer: set by the search, not searched)
  p  padding token id (default 0)
  e  1: the output is a sentence embedding (the mask-aware mean of the last layer's states,
     projected to the task's width: the teacher's embedding size); left out: class logits
     (first token -> pooler -> classifier). Set from the task, as v and p are.
The sequence length comes from the task, as an image's shape does: the family takes
input_shape = (L,); the vocabulary is a knob so that the spec alone rebuilds the student.

Export: one input, int64 token ids N x L at a fixed L; the attention mask is derived inside from
ids != pad id. Attention is written with matmul, add and softmax (no fused attention kernel), the
layers are post-LayerNorm with GELU, as BERT's, so that ONNX, TFLite and Core ML take it as is.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from edgedistill.errors import UserInputError
from edgedistill.inputs import Vocabulary, takes_tokens
from edgedistill.latency.costs import ModelCost
from edgedistill.latency.transformer_cost import EncoderShape, transformer_cost
from edgedistill.students._registry import FAMILIES
from edgedistill.students.candidate import Candidate

if TYPE_CHECKING:
    import torch
    from torch import nn

FAMILY = "tfm"
KNOBS = ("l", "h", "a", "i", "v", "p", "e")
SPACE_LAYERS = (1, 2, 4, 6)
SPACE_HIDDEN = (64, 128, 192, 256, 384)
SPACE_INTERMEDIATE_RATIOS = (2, 4)
HEAD_SIZE = 64  # hidden units per attention head in the space, as in BERT
MASKED_SCORE = -10000.0  # added to the scores of padding keys: exp() of it is 0 in fp32
HEADS = ("classify", "embed")
POOLINGS = ("mean", "cls")
ACTIVATIONS = {"gelu": "none", "gelu_tanh": "tanh"}  # name -> nn.GELU(approximate=...)


def enumerate_text_space(seq_len: int, vocabulary: Vocabulary) -> list[Candidate]:
    """The text search space: 1-6 layers, hidden 64-384 with 64-wide heads, MLP 2x or 4x, over
    the task's vocabulary. The architectures are the same at every sequence length (their costs
    are not)."""
    if seq_len < 1:
        raise UserInputError(f"text students need a sequence length of at least 1, got {seq_len}")
    grid = itertools.product(SPACE_LAYERS, SPACE_HIDDEN, SPACE_INTERMEDIATE_RATIOS)
    task = text_task_knobs(vocabulary)
    return [
        Candidate(
            FAMILY,
            {"l": layers, "h": hidden, "a": hidden // HEAD_SIZE, "i": hidden * ratio, **task},
        )
        for layers, hidden, ratio in grid
    ]


def text_task_knobs(vocabulary: Vocabulary) -> dict[str, int]:
    """The knobs a text task sets: its vocabulary, padding id and (embedding tasks) e=1."""
    return {
        "v": vocabulary.size,
        "p": vocabulary.pad_id,
        **({"e": 1} if vocabulary.embedding else {}),
    }


def spread_layers(student_layers: int, teacher_layers: int) -> list[int]:
    """The teacher layer (0-based) each student layer follows, spread evenly and ending on the
    teacher's last: 2 of 4 -> [1, 3], 6 of 12 -> [1, 3, 5, 7, 9, 11], 3 of 4 -> [0, 2, 3]."""
    return [
        ((index + 1) * teacher_layers * 2 + student_layers) // (2 * student_layers) - 1
        for index in range(student_layers)
    ]


def _check(candidate: Candidate, knob: str, ok: bool, expected: str) -> None:
    if not ok:
        raise UserInputError(f"student {candidate.spec}: {knob} must be {expected}")


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and low <= value <= high


@FAMILIES.register(FAMILY)
class TransformerFamily:
    """The `tfm` student family (the StudentFamily protocol of students/_registry.py)."""

    name = FAMILY
    task_knobs = ("v", "p", "e")

    def space(
        self, input_shape: tuple[int, ...], vocabulary: Vocabulary | None = None
    ) -> Iterator[Candidate]:
        """Candidates for token ids of shape (L,) over `vocabulary`; none for an image."""
        if not takes_tokens(input_shape) or vocabulary is None:
            return
        yield from enumerate_text_space(input_shape[0], vocabulary)

    def canonical(self, candidate: Candidate) -> Candidate:
        """The candidate with every knob spelled out (a, i filled in from h), validated."""
        knobs = dict(candidate.knobs)
        missing = {"l", "h", "v"} - set(knobs)
        unknown = set(knobs) - set(KNOBS)
        if missing or unknown:
            raise UserInputError(
                f"student {candidate.spec}: tfm takes knobs l (layers), h (hidden size), "
                "a (attention heads), i (intermediate size), v (vocabulary size), p (padding id), "
                "e (1: a sentence embedding)"
                + (f"; missing {', '.join(sorted(missing))}" if missing else "")
                + (f"; unknown {', '.join(sorted(unknown))}" if unknown else "")
            )
        hidden = knobs["h"]
        _check(candidate, "h", _is_int(hidden, 8, 4096), "an integer in [8, 4096]")
        knobs.setdefault("a", max(1, hidden // HEAD_SIZE))
        knobs.setdefault("i", 4 * hidden)
        knobs.setdefault("p", 0)
        full = Candidate(self.name, knobs)
        _check(full, "l", _is_int(knobs["l"], 1, 48), "an integer in [1, 48]")
        heads = knobs["a"]
        _check(
            full,
            "a",
            _is_int(heads, 1, 64) and hidden % heads == 0,
            f"an integer in [1, 64] that divides h={hidden}",
        )
        _check(full, "i", _is_int(knobs["i"], 8, 16384), "an integer in [8, 16384]")
        _check(full, "v", _is_int(knobs["v"], 2, 10_000_000), "an integer in [2, 10000000]")
        _check(full, "p", _is_int(knobs["p"], 0, knobs["v"] - 1), f"an id below v={knobs['v']}")
        _check(full, "e", knobs.get("e", 0) in (0, 1), "0 (class logits) or 1 (an embedding)")
        if knobs.get("e") == 0:  # the default is left out, so that each student has one spec
            del knobs["e"]
            full = Candidate(self.name, knobs)
        return full

    def validate(self, candidate: Candidate) -> None:
        self.canonical(candidate)

    def build(
        self,
        candidate: Candidate,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        head: str = "classify",
        pooling: str = "mean",
        normalize: bool = False,
        embed_dim: int | None = None,
    ) -> nn.Module:
        """The student for token ids of shape (L,) from the vocabulary of its knob v; with e=1
        a sentence embedding of `num_classes` values (the teacher's width)."""
        knobs = self.canonical(candidate).knobs
        seq_len = _seq_len(candidate, input_shape)
        if knobs.get("e"):
            head, embed_dim = "embed", num_classes
        return _student_class()(
            knobs["v"],
            seq_len,
            knobs["l"],
            knobs["h"],
            knobs["a"],
            knobs["i"],
            num_classes,
            pad_id=knobs["p"],
            head=head,
            pooling=pooling,
            normalize=normalize,
            embed_dim=embed_dim,
        )

    def cost(
        self,
        candidate: Candidate,
        input_shape: tuple[int, ...],
        num_classes: int,
        precision: str = "fp32",
        *,
        head: str = "classify",
        normalize: bool = False,
        embed_dim: int | None = None,
    ) -> ModelCost:
        """The candidate's per-layer cost at the task's sequence length, without building it."""
        knobs = self.canonical(candidate).knobs
        if knobs.get("e"):
            head, embed_dim = "embed", num_classes
        shape = EncoderShape(
            layers=knobs["l"],
            hidden=knobs["h"],
            heads=knobs["a"],
            intermediate=knobs["i"],
            seq_len=_seq_len(candidate, input_shape),
            vocab_size=knobs["v"],
            num_outputs=num_classes,
            head=head,
            embed_dim=embed_dim,
            normalize=normalize,
        )
        return transformer_cost(shape, precision)


def _seq_len(candidate: Candidate, input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 1 or input_shape[0] < 1:
        raise UserInputError(
            f"student {candidate.spec}: text students take token ids of shape (L,), "
            f"not input shape {tuple(input_shape)}"
        )
    return int(input_shape[0])


def student_cost(student: nn.Module, seq_len: int | None = None, precision: str = "fp32"):
    """The per-layer cost (latency.transformer_cost) of a built TransformerStudent."""
    shape = EncoderShape(
        layers=student.num_layers,
        hidden=student.hidden,
        heads=student.heads,
        intermediate=student.intermediate,
        seq_len=seq_len or student.max_len,
        vocab_size=student.vocab_size,
        num_outputs=student.num_outputs,
        head=student.head,
        embed_dim=student.embed_dim,
        normalize=student.normalize,
        max_len=student.max_len,
    )
    return transformer_cost(shape, precision)


# --- the modules (built on first use, so importing this file does not import torch) ----------


@cache
def _layer_classes():
    """(TextEmbeddings, SelfAttention, EncoderLayer)."""
    import torch
    from torch import nn

    class TextEmbeddings(nn.Module):
        """Word + position embeddings, LayerNorm, dropout (BERT's, without token types)."""

        def __init__(self, vocab_size, max_len, hidden, pad_id, dropout, eps) -> None:
            super().__init__()
            self.word = nn.Embedding(vocab_size, hidden, padding_idx=pad_id)
            self.position = nn.Embedding(max_len, hidden)
            self.norm = nn.LayerNorm(hidden, eps=eps)
            self.dropout = nn.Dropout(dropout)
            self.register_buffer("positions", torch.arange(max_len), persistent=False)

        def forward(self, input_ids):
            positions = self.position(self.positions[: input_ids.shape[1]])
            return self.dropout(self.norm(self.word(input_ids) + positions))

    class SelfAttention(nn.Module):
        """Multi-head self-attention from plain matmuls; `probs` is a module so that feature
        taps see each layer's attention maps (N x heads x L x L)."""

        def __init__(self, hidden: int, heads: int) -> None:
            super().__init__()
            self.heads, self.head_size = heads, hidden // heads
            self.scale = self.head_size**-0.5
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)
            self.probs = nn.Softmax(dim=-1)
            self.output = nn.Linear(hidden, hidden)

        def _split(self, states):  # N x L x H -> N x heads x L x head_size
            batch, length = states.shape[0], states.shape[1]
            return states.reshape(batch, length, self.heads, self.head_size).transpose(1, 2)

        def forward(self, states, mask_bias):
            query, key, value = (self._split(p(states)) for p in (self.query, self.key, self.value))
            scores = torch.matmul(query, key.transpose(2, 3)) * self.scale + mask_bias
            context = torch.matmul(self.probs(scores), value).transpose(1, 2)
            return self.output(context.reshape(states.shape[0], states.shape[1], -1))

    class EncoderLayer(nn.Module):
        """Post-LayerNorm transformer layer: x = norm(x + attention(x)); x = norm(x + mlp(x))."""

        def __init__(self, hidden, heads, intermediate, dropout, eps, approximate) -> None:
            super().__init__()
            self.attention = SelfAttention(hidden, heads)
            self.attention_norm = nn.LayerNorm(hidden, eps=eps)
            self.intermediate = nn.Linear(hidden, intermediate)
            self.activation = nn.GELU(approximate=approximate)
            self.output = nn.Linear(intermediate, hidden)
            self.output_norm = nn.LayerNorm(hidden, eps=eps)
            self.dropout = nn.Dropout(dropout)

        def forward(self, states, mask_bias):
            states = self.attention_norm(states + self.dropout(self.attention(states, mask_bias)))
            mlp = self.output(self.activation(self.intermediate(states)))
            return self.output_norm(states + self.dropout(mlp))

    return TextEmbeddings, SelfAttention, EncoderLayer


@cache
def _student_class():
    import torch
    from torch import nn

    TextEmbeddings, _, EncoderLayer = _layer_classes()

    class TransformerStudent(nn.Module):
        """BERT-style encoder on token ids N x L (int64). forward -> classify: logits N x C
        (first token -> pooler dense + tanh -> classifier); embed: the pooled sentence
        embedding N x E (mask-aware mean or first token, optional projection to embed_dim,
        optional L2 normalisation)."""

        def __init__(
            self,
            vocab_size: int,
            max_len: int,
            layers: int,
            hidden: int,
            heads: int,
            intermediate: int,
            num_outputs: int,
            pad_id: int = 0,
            head: str = "classify",
            pooling: str = "mean",
            normalize: bool = False,
            embed_dim: int | None = None,
            dropout: float = 0.1,
            activation: str = "gelu",
            layer_norm_eps: float = 1e-12,
        ) -> None:
            super().__init__()
            _check_arguments(hidden, heads, head, pooling, activation, pad_id, vocab_size)
            self.vocab_size, self.max_len, self.pad_id = vocab_size, max_len, pad_id
            self.num_layers, self.hidden, self.heads = layers, hidden, heads
            self.intermediate, self.num_outputs = intermediate, num_outputs
            self.head, self.pooling, self.normalize = head, pooling, normalize
            self.embed_dim = embed_dim if head == "embed" else None
            self.embeddings = TextEmbeddings(
                vocab_size, max_len, hidden, pad_id, dropout, layer_norm_eps
            )
            approximate = ACTIVATIONS[activation]
            self.layers = nn.ModuleList(
                EncoderLayer(hidden, heads, intermediate, dropout, layer_norm_eps, approximate)
                for _ in range(layers)
            )
            self.dropout = nn.Dropout(dropout)
            if head == "classify":
                self.pooler = nn.Linear(hidden, hidden)
                self.pooler_activation = nn.Tanh()
                self.classifier = nn.Linear(hidden, num_outputs)
            elif self.embed_dim is not None:
                self.projection = nn.Linear(hidden, self.embed_dim)
            self.apply(_bert_init)

        def _encode(self, input_ids):
            """(hidden states: embeddings then each layer's output, padding mask N x L)."""
            if input_ids.shape[1] > self.max_len:
                raise ValueError(
                    f"{input_ids.shape[1]} tokens; this student takes at most {self.max_len}"
                )
            mask = input_ids != self.pad_id
            states = [self.embeddings(input_ids)]
            bias = (1.0 - mask.to(states[0].dtype)) * MASKED_SCORE
            bias = bias[:, None, None, :]  # N x 1 x 1 L: over heads and query positions
            for layer in self.layers:
                states.append(layer(states[-1], bias))
            return states, mask

        def _pool(self, last, mask):
            if self.head == "classify" or self.pooling == "cls":
                return last[:, 0]
            weights = mask.to(last.dtype).unsqueeze(-1)
            return (last * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

        def _output(self, pooled):
            if self.head == "classify":
                return self.classifier(self.dropout(self.pooler_activation(self.pooler(pooled))))
            if self.embed_dim is not None:
                pooled = self.projection(pooled)
            if self.normalize:
                squared = (pooled * pooled).sum(dim=-1, keepdim=True)
                pooled = pooled * torch.rsqrt(squared.clamp_min(1e-24))
            return pooled

        def forward(self, input_ids):
            states, mask = self._encode(input_ids)
            return self._output(self._pool(states[-1], mask))

        def features(self, input_ids) -> dict[str, Any]:
            """hidden_states (embeddings + each layer, N x L x H), attentions (each layer's
            softmax probabilities, N x heads x L x L), embeddings (the embedding layer's output),
            pooled (the first token or masked mean of the last layer), output (= forward)."""
            attentions: list[torch.Tensor] = []
            handles = [
                layer.attention.probs.register_forward_hook(
                    lambda module, inputs, output: attentions.append(output)
                )
                for layer in self.layers
            ]
            try:
                states, mask = self._encode(input_ids)
            finally:
                for handle in handles:
                    handle.remove()
            pooled = self._pool(states[-1], mask)
            return {
                "hidden_states": states,
                "attentions": attentions,
                "embeddings": states[0],
                "pooled": pooled,
                "output": self._output(pooled),
            }

    return TransformerStudent


def _check_arguments(hidden, heads, head, pooling, activation, pad_id, vocab_size) -> None:
    if hidden % heads:
        raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
    for value, allowed, what in (
        (head, HEADS, "head"),
        (pooling, POOLINGS, "pooling"),
        (activation, tuple(ACTIVATIONS), "activation"),
    ):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    if not 0 <= pad_id < vocab_size:
        raise ValueError(f"pad_id {pad_id} is outside the vocabulary of {vocab_size} tokens")


def _bert_init(module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
    from torch import nn

    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.Embedding) and module.padding_idx is not None:
        nn.init.zeros_(module.weight[module.padding_idx])
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def __getattr__(name: str) -> Any:
    """`TransformerStudent` is made on first access: importing this module imports no torch."""
    if name == "TransformerStudent":
        return _student_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- initialisation from a Hugging Face BERT teacher -------------------------------------------

TEACHER_PREFIX = "bert."  # BertForSequenceClassification and the other heads keep BertModel here
_TEACHER_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")
# student module (inside layers.{i}) -> teacher module (inside encoder.layer.{j})
LAYER_KEYS = {
    "attention.query": "attention.self.query",
    "attention.key": "attention.self.key",
    "attention.value": "attention.self.value",
    "attention.output": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "output_norm": "output.LayerNorm",
}
HEAD_KEYS = {"pooler": "pooler.dense", "classifier": "classifier"}


@dataclass(frozen=True)
class TeacherInit:
    """What `init_from_teacher` did."""

    mapping: tuple[int, ...]  # the teacher layer each student layer was copied from; () if none
    copied: tuple[str, ...]  # student parameter names now holding teacher weights
    fresh: bool  # no encoder layer came from the teacher
    note: str


def teacher_layer_indices(teacher_state: dict[str, Any]) -> list[int]:
    """The encoder layers (0-based) present in a BertModel state dict."""
    found = {int(m.group(1)) for key in _strip(teacher_state) if (m := _TEACHER_LAYER.match(key))}
    return sorted(found)


def _strip(teacher_state: dict[str, Any]) -> dict[str, Any]:
    return {key.removeprefix(TEACHER_PREFIX): value for key, value in teacher_state.items()}


def _layers_text(indices: list[int]) -> str:
    return ", ".join(str(i) for i in indices) if indices else "none"


def check_mapping(
    mapping: list[int] | None, student_layers: int, teacher_layers: list[int]
) -> list[int]:
    """The mapping to use (spread evenly when None); refuses one that names a missing teacher
    layer or does not give one teacher layer per student layer, listing the available ones."""
    if mapping is None:
        return [teacher_layers[i] for i in spread_layers(student_layers, len(teacher_layers))]
    available = f"the teacher's layers are {_layers_text(teacher_layers)} (0-based)"
    if len(mapping) != student_layers:
        raise UserInputError(
            f"layer mapping {list(mapping)}: gives {len(mapping)} teacher layer(s) for "
            f"{student_layers} student layer(s); {available}"
        )
    missing = [index for index in mapping if index not in teacher_layers]
    if missing:
        raise UserInputError(
            f"layer mapping {list(mapping)}: the teacher has no layer "
            f"{', '.join(str(i) for i in missing)}; {available}"
        )
    return list(mapping)


def init_from_teacher(
    student: nn.Module,
    teacher_state: dict[str, torch.Tensor],
    teacher_layers: int,
    mapping: list[int] | None = None,
    *,
    teacher_heads: int | None = None,
) -> TeacherInit:
    """Copy a BERT teacher's embeddings and layers `mapping` (default: spread evenly) into the
    student, DistilBERT-style, when hidden size, intermediate size and heads match (heads are
    taken to match when `teacher_heads` is None: a state dict does not record them).

    `teacher_state`: the state dict of a transformers BertModel, or of a model that holds one
    under `bert.` (BertForSequenceClassification). Token-type embedding 0 is folded into the
    position embeddings (the student has no token types). The pooler and classifier are copied
    too when the teacher has them and their shapes match. Widths that differ leave the student
    fresh (the note says so): hidden-state losses then learn projections, as in TinyBERT."""
    import torch

    state = _strip(teacher_state)
    present = teacher_layer_indices(state)
    declared = list(range(teacher_layers))
    if present != declared:
        raise UserInputError(
            f"teacher state dict: holds encoder layers {_layers_text(present)}, not the "
            f"{teacher_layers} (0-{teacher_layers - 1}) the teacher declares"
        )
    if "embeddings.word_embeddings.weight" not in state:
        raise UserInputError(
            "teacher state dict: no embeddings.word_embeddings.weight; expected the state dict "
            "of a transformers BertModel (optionally under bert.)"
        )
    chosen = check_mapping(mapping, student.num_layers, present)
    vocab_size, hidden = state["embeddings.word_embeddings.weight"].shape
    if vocab_size != student.vocab_size:
        raise UserInputError(
            f"the teacher's vocabulary has {vocab_size} tokens, the student's {student.vocab_size}"
            ": a student reads the teacher's token ids (its tokenizer)"
        )
    if hidden != student.hidden:
        return TeacherInit(
            (),
            (),
            True,
            f"student hidden size {student.hidden} differs from the teacher's {hidden}: the "
            "student starts fresh; hidden-state losses learn linear projections from the "
            "student's width to the teacher's (TinyBERT)",
        )
    copies = _embedding_copies(state, student)
    intermediate = state[f"encoder.layer.{present[0]}.intermediate.dense.weight"].shape[0]
    mismatch = []
    if intermediate != student.intermediate:
        mismatch.append(f"intermediate size {student.intermediate} vs {intermediate}")
    if teacher_heads is not None and teacher_heads != student.heads:
        mismatch.append(f"heads {student.heads} vs {teacher_heads}")
    if not mismatch:
        copies += _layer_copies(state, chosen)
        copies += [
            (f"{mine}.{part}", state[f"{theirs}.{part}"])
            for mine, theirs in HEAD_KEYS.items()
            for part in ("weight", "bias")
            if f"{theirs}.{part}" in state and hasattr(student, mine)
        ]
    own = dict(student.named_parameters())
    copies = [(name, value) for name, value in copies if own[name].shape == value.shape]
    with torch.no_grad():
        for name, value in copies:
            own[name].copy_(value)
    copied = tuple(name for name, _ in copies)
    if mismatch:
        note = (
            f"embeddings copied from the teacher; the layers start fresh ({', '.join(mismatch)}"
            "): hidden-state losses learn linear projections where widths differ (TinyBERT)"
        )
        return TeacherInit((), copied, True, note)
    layers = ", ".join(str(i) for i in chosen)
    note = f"embeddings and teacher layers {layers} of {teacher_layers} copied (DistilBERT)"
    return TeacherInit(tuple(chosen), copied, False, note)


def as_bert_state(state: dict[str, Any]) -> dict[str, Any]:
    """A TransformerStudent's state dict in a transformers BertModel's naming (the built-in
    transformer teacher is one), so that `init_from_teacher` reads either teacher."""
    renamed = {
        "embeddings.word.weight": "embeddings.word_embeddings.weight",
        "embeddings.position.weight": "embeddings.position_embeddings.weight",
        "embeddings.norm.weight": "embeddings.LayerNorm.weight",
        "embeddings.norm.bias": "embeddings.LayerNorm.bias",
    }
    for mine, theirs in HEAD_KEYS.items():
        for part in ("weight", "bias"):
            renamed[f"{mine}.{part}"] = f"{theirs}.{part}"
    out = {}
    for name, value in state.items():
        layer = re.match(r"^layers\.(\d+)\.(.+)\.(weight|bias)$", name)
        if layer is not None and layer.group(2) in LAYER_KEYS:
            index, key, part = layer.groups()
            out[f"encoder.layer.{index}.{LAYER_KEYS[key]}.{part}"] = value
        elif name in renamed:
            out[renamed[name]] = value
    return out


def _embedding_copies(state: dict[str, Any], student: nn.Module) -> list[tuple[str, Any]]:
    positions = state["embeddings.position_embeddings.weight"]
    if positions.shape[0] < student.max_len:
        raise UserInputError(
            f"the teacher has positions for {positions.shape[0]} tokens; the student's "
            f"sequence length {student.max_len} is longer"
        )
    positions = positions[: student.max_len]
    token_types = state.get("embeddings.token_type_embeddings.weight")
    if token_types is not None:  # every token is of type 0: fold it into the positions
        positions = positions + token_types[0]
    return [
        ("embeddings.word.weight", state["embeddings.word_embeddings.weight"]),
        ("embeddings.position.weight", positions),
        ("embeddings.norm.weight", state["embeddings.LayerNorm.weight"]),
        ("embeddings.norm.bias", state["embeddings.LayerNorm.bias"]),
    ]


def _layer_copies(state: dict[str, Any], chosen: list[int]) -> list[tuple[str, Any]]:
    return [
        (f"layers.{mine}.{student_key}.{part}", state[f"encoder.layer.{theirs}.{key}.{part}"])
        for mine, theirs in enumerate(chosen)
        for student_key, key in LAYER_KEYS.items()
        for part in ("weight", "bias")
    ]
