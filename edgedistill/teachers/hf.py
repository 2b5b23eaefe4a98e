"""`hf:PATH`: a Hugging Face model folder on this disk as a text teacher, never downloaded.

The folder is read as files first (`inspect_hf_folder`, no transformers import, no weights
read): config.json, safetensors weights (pickled `pytorch_model.bin` files are refused, never
opened), tokenizer files and, for a sentence-transformers folder, modules.json with its pooling
(Reimers & Gurevych 2019). The task type follows the teacher: a `*ForSequenceClassification`
head gives class logits; a bare encoder or a sentence-transformers folder gives a pooled
sentence embedding. `load_hf_teacher` then loads it with transformers, offline
(`local_files_only`, the hub's offline mode on while loading), as an `HFTeacherModule`:
`teacher(input_ids)` for soft targets and `teacher.features(input_ids)` for the hidden-state,
attention and embedding-layer terms of DistilBERT (Sanh et al. 2019) and TinyBERT (Jiao et al.
2020). transformers is the optional `text` extra, imported inside the functions that need it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgedistill.errors import UserInputError
from edgedistill.tasks.tokenizer import (
    TOKENIZER_JSON,
    check_tokenizer_folder,
    import_transformers,
    not_a_model_folder,
    offline,
    tokenizer_pad_id,
)
from edgedistill.weights import check_safetensors

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TextTaskType = Literal["classification", "embedding"]
Pooling = Literal["mean", "cls", "max"]

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# Weights in another form than safetensors: named in the refusal, never opened.
REFUSED_WEIGHTS = {
    "pytorch_model.bin": "a pickle",
    "pytorch_model.bin.index.json": "the index of pickled shards",
    "tf_model.h5": "TensorFlow weights",
    "flax_model.msgpack": "Flax weights",
}
# sentence-transformers Pooling config flags -> the pooling edgedistill reproduces
POOLING_FLAGS: dict[str, Pooling] = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}
UNSUPPORTED_POOLING_FLAGS = (
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)
# config.json names of one quantity across model families (BERT, DistilBERT, GPT-2, ...)
SIZE_FIELDS = {
    "hidden_size": ("hidden_size", "dim", "d_model", "n_embd"),
    "num_layers": ("num_hidden_layers", "n_layers", "num_layers", "n_layer"),
    "num_heads": ("num_attention_heads", "n_heads", "num_heads", "n_head"),
    "vocab_size": ("vocab_size",),
}
MAX_POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len")
GENERIC_LABEL = re.compile(r"LABEL_\d+")


@dataclass
class HFTeacherInfo:
    """What a Hugging Face folder holds, read from its files."""

    path: Path  # the folder hf:PATH names
    model_folder: Path  # config + weights + tokenizer (a sentence-transformers subfolder, or path)
    architecture: str  # config.json architectures[0] (or its model_type when none is named)
    task_type: TextTaskType
    hidden_size: int
    num_layers: int
    num_heads: int
    vocab_size: int
    max_positions: int | None  # longest input the position embeddings take; None: undeclared
    pad_token_id: int  # padding positions are masked out: attention_mask = input_ids != this
    pooling: Pooling | None = None  # embedding teachers: how token states become one vector
    normalize: bool = False  # embedding teachers: L2-normalised (a Normalize module)
    labels: list[str] = field(default_factory=list)  # classification: id2label, in logit order
    max_seq_length: int | None = None  # sentence-transformers' own limit (sentence_bert_config)
    weights: list[str] = field(default_factory=list)  # the safetensors files, in model_folder
    notes: list[str] = field(default_factory=list)

    @property
    def output_size(self) -> int:
        """Logits per text (classification) or the embedding's width."""
        return len(self.labels) if self.task_type == "classification" else self.hidden_size


# ---- reading the folder (files only) ----------------------------------------------------------


def inspect_hf_folder(path: str | Path, what: str = "--teacher") -> HFTeacherInfo:
    """Check a Hugging Face folder from its files and say what teacher it is; refuses (naming
    the folder and file) whatever would need a download, a pickle or unsupported code."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        state = "is a file" if folder.exists() else "does not exist"
        raise UserInputError(
            f"{what}: hf:{path}: {folder} {state}; hf:PATH names a Hugging Face model folder "
            f"({CONFIG}, {SAFETENSORS}, {TOKENIZER_JSON})"
        )
    notes: list[str] = []
    sentence = _sentence_transformer(folder, what)
    model_folder = folder / sentence.transformer_path if sentence else folder
    config_path = model_folder / CONFIG
    if not config_path.is_file():
        raise not_a_model_folder(model_folder, CONFIG, what)
    config = _read_json(config_path, what)
    if config.get("auto_map"):
        raise UserInputError(
            f"{what}: {config_path}: auto_map names the model's own Python code "
            f"({', '.join(config['auto_map'])}); edgedistill does not run code shipped with a "
            "model (trust_remote_code), so only architectures transformers has are taken"
        )
    if config.get("is_encoder_decoder"):
        raise UserInputError(
            f"{what}: {config_path}: an encoder-decoder model; a text teacher is an encoder "
            "(a classifier or a sentence embedder)"
        )
    weights = _weights(model_folder, what)
    check_tokenizer_folder(model_folder, what)
    sizes = {
        key: _config_int(config, names, config_path, what) for key, names in SIZE_FIELDS.items()
    }
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else str(config.get("model_type", "?"))
    info = HFTeacherInfo(
        path=folder,
        model_folder=model_folder,
        architecture=architecture,
        task_type="embedding",
        max_positions=_first(config, MAX_POSITION_FIELDS),
        pad_token_id=_pad_token_id(model_folder, config, config_path, notes, what),
        weights=weights,
        notes=notes,
        **sizes,
    )
    if sentence is not None:
        info.pooling, info.normalize = sentence.pooling, sentence.normalize
        info.max_seq_length = sentence.max_seq_length
    elif architecture.endswith("ForSequenceClassification"):
        info.task_type = "classification"
        info.labels = _labels(config, config_path, notes, what)
    else:
        _check_encoder(architectures, architecture, config_path, notes, what)
        info.pooling = "mean"
        notes.append(
            f"{folder}: a bare encoder ({architecture}) without sentence-transformers files "
            "(modules.json, 1_Pooling/config.json): its embedding is the mean of the last "
            "hidden states over non-padding tokens, not normalised"
        )
    if info.max_positions is None:
        notes.append(f"{config_path}: no maximum input length declared")
    return info


def _read_json(path: Path, what: str, kind: type = dict) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(
            f"{what}: {path}: line {exc.lineno}: not valid JSON ({exc.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{what}: {path}: cannot read it ({exc})") from None
    if not isinstance(data, kind):
        raise UserInputError(f"{what}: {path}: expected a JSON {kind.__name__}")
    return data


def _first(config: dict, names: Sequence[str]) -> int | None:
    for name in names:
        if isinstance(config.get(name), int):
            return int(config[name])
    return None


def _config_int(config: dict, names: Sequence[str], path: Path, what: str) -> int:
    value = _first(config, names)
    if value is None:
        raise UserInputError(f"{what}: {path}: no {' / '.join(names)} field")
    return value


def _weights(folder: Path, what: str) -> list[str]:
    """The safetensors files to load; other forms are refused by name, never opened."""
    if (folder / SAFETENSORS).is_file():
        check_safetensors(folder / SAFETENSORS, what)  # named here, not deep in transformers
        return [SAFETENSORS]
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        weight_map = _read_json(index, what).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UserInputError(f"{what}: {index}: no weight_map naming the shards")
        shards = sorted(set(map(str, weight_map.values())))
        for shard in shards:
            if Path(shard).name != shard:
                raise UserInputError(f"{what}: {index}: shard {shard!r} is not in {folder}")
            if not (folder / shard).is_file():
                raise not_a_model_folder(folder, shard, what, f"a shard {SAFETENSORS_INDEX} lists")
            check_safetensors(folder / shard, what)
        return [SAFETENSORS_INDEX, *shards]
    for name, kind in REFUSED_WEIGHTS.items():
        if (folder / name).exists():
            raise UserInputError(
                f"{what}: {folder / name}: the weights are {kind}; edgedistill loads "
                f"safetensors only ({SAFETENSORS}) and never unpickles a file, which can run "
                "code. Where you trust the file, convert it: AutoModel.from_pretrained(DIR)"
                ".save_pretrained(DIR) writes model.safetensors"
            )
    raise not_a_model_folder(folder, SAFETENSORS, what, f"nor {SAFETENSORS_INDEX} with its shards")


def _labels(config: dict, path: Path, notes: list[str], what: str) -> list[str]:
    """Class names in logit order from id2label; refuses heads that are not single-label."""
    problem = config.get("problem_type")
    if problem not in (None, "single_label_classification"):
        raise UserInputError(
            f"{what}: {path}: problem_type {problem!r}; a classification teacher gives one "
            "label per text (single_label_classification)"
        )
    id2label = config.get("id2label") or {}
    try:
        by_index = {int(key): str(name) for key, name in id2label.items()}
    except (AttributeError, ValueError):
        raise UserInputError(f"{what}: {path}: id2label keys must be 0, 1, ...") from None
    if sorted(by_index) != list(range(len(by_index))) or len(by_index) < 2:
        raise UserInputError(
            f"{what}: {path}: id2label must name classes 0..K-1 with K >= 2 (found "
            f"{sorted(by_index) or 'none'}); a single-output head is a regression, not supported"
        )
    labels = [by_index[index] for index in range(len(by_index))]
    if all(GENERIC_LABEL.fullmatch(name) for name in labels):
        notes.append(
            f"{path}: id2label gives generic names ({labels[0]}, ...): the task's labels are "
            "matched to the logits by position"
        )
    return labels


def _check_encoder(
    architectures: list, architecture: str, path: Path, notes: list[str], what: str
) -> None:
    """An embedding teacher without sentence-transformers files must be a bare encoder."""
    if not architectures:
        notes.append(f"{path}: no architectures named; read as a bare {architecture} encoder")
    elif architecture.endswith(("ForMaskedLM", "ForPreTraining")):
        notes.append(f"{path}: {architecture}: its pretraining head is dropped, the encoder kept")
    elif not architecture.endswith("Model") or architecture.endswith("LMHeadModel"):
        raise UserInputError(
            f"{what}: {path}: architecture {architecture} is neither a sequence classifier "
            "(*ForSequenceClassification) nor an encoder (*Model, *ForMaskedLM, or a "
            "sentence-transformers folder with modules.json)"
        )


def _pad_token_id(
    folder: Path, config: dict, config_path: Path, notes: list[str], what: str
) -> int:
    """The id the tokenizer pads with (what the attention mask is derived from)."""
    from_tokenizer = tokenizer_pad_id(folder)
    from_config = config.get("pad_token_id")
    from_config = from_config if isinstance(from_config, int) else None
    if from_tokenizer is None and from_config is None:
        raise UserInputError(
            f"{what}: {folder}: no padding token (tokenizer files declare no pad_token, "
            f"{config_path.name} no pad_token_id); the teacher masks padding by that id"
        )
    if from_tokenizer is not None and from_config not in (None, from_tokenizer):
        notes.append(
            f"{folder}: the tokenizer pads with id {from_tokenizer}, {CONFIG} says "
            f"pad_token_id {from_config}; padding is masked by the tokenizer's"
        )
    if from_tokenizer is not None:
        return from_tokenizer
    assert from_config is not None
    return from_config


# ---- sentence-transformers folders ------------------------------------------------------------


@dataclass(frozen=True)
class _SentenceTransformer:
    transformer_path: str  # "" (the folder itself) or a subfolder such as 0_Transformer
    pooling: Pooling
    normalize: bool
    max_seq_length: int | None


def _sentence_transformer(folder: Path, what: str) -> _SentenceTransformer | None:
    """modules.json read: Transformer, Pooling and optional Normalize; anything else refused
    (the teacher's embedding would not be reproduced)."""
    modules_path = folder / "modules.json"
    if not modules_path.is_file():
        return None
    modules = _read_json(modules_path, what, kind=list)
    kinds, paths = [], []
    for module in modules:
        if not isinstance(module, dict) or not isinstance(module.get("type"), str):
            raise UserInputError(f"{what}: {modules_path}: each module needs a type")
        kinds.append(module["type"].rsplit(".", 1)[-1])
        paths.append(str(module.get("path", "")))
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UserInputError(
            f"{what}: {modules_path}: modules {', '.join(kinds) or 'none'}; supported: "
            "Transformer, Pooling, then optionally Normalize (other modules would change the "
            "embedding edgedistill reproduces)"
        )
    for path in paths:
        if not (folder / path).resolve().is_relative_to(folder.resolve()):
            raise UserInputError(f"{what}: {modules_path}: module path {path!r} leaves {folder}")
    pooling_path = folder / paths[1] / CONFIG
    if not pooling_path.is_file():
        raise not_a_model_folder(folder / paths[1], CONFIG, what, "the Pooling module's settings")
    settings_path = folder / paths[0] / "sentence_bert_config.json"
    settings = _read_json(settings_path, what) if settings_path.is_file() else {}
    max_seq_length = settings.get("max_seq_length")
    return _SentenceTransformer(
        transformer_path=paths[0],
        pooling=_pooling(_read_json(pooling_path, what), pooling_path, what),
        normalize=len(kinds) == 3,
        max_seq_length=max_seq_length if isinstance(max_seq_length, int) else None,
    )


def _pooling(settings: dict, path: Path, what: str) -> Pooling:
    unsupported = [flag for flag in UNSUPPORTED_POOLING_FLAGS if settings.get(flag)]
    if unsupported:
        raise UserInputError(
            f"{what}: {path}: {unsupported[0]} is not supported; pooling is one of "
            f"{', '.join(POOLING_FLAGS)}"
        )
    chosen = [pooling for flag, pooling in POOLING_FLAGS.items() if settings.get(flag)]
    if len(chosen) != 1:
        raise UserInputError(
            f"{what}: {path}: exactly one of {', '.join(POOLING_FLAGS)} must be true (found "
            f"{len(chosen)}: {', '.join(chosen) or 'none'})"
        )
    return chosen[0]


# ---- loading with transformers -----------------------------------------------------------------


def load_hf_teacher(
    path: str | Path, what: str = "--teacher", info: HFTeacherInfo | None = None
) -> torch.nn.Module:
    """The teacher in `path` as a frozen HFTeacherModule (eval mode, float32, no gradients)."""
    info = info or inspect_hf_folder(path, what)
    transformers = import_transformers("a Hugging Face teacher (hf:PATH)")
    auto = (
        transformers.AutoModelForSequenceClassification
        if info.task_type == "classification"
        else transformers.AutoModel
    )
    with offline(transformers):
        try:
            model, loading = auto.from_pretrained(
                str(info.model_folder),
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=False,
                attn_implementation="eager",
                output_loading_info=True,
            )
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserInputError(
                f"{what}: {info.model_folder}: transformers {transformers.__version__} cannot "
                f"load it offline: {first_line}"
            ) from None
    _check_loading(loading, info, what)
    model.float().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return _module_class()(model, info).eval()


def _check_loading(loading: dict, info: HFTeacherInfo, what: str) -> None:
    """Refuse weights that leave layers of the teacher randomly initialised (a pooler the
    embedding does not use may be absent)."""
    missing = sorted(
        key
        for key in loading.get("missing_keys") or ()
        if info.task_type == "classification" or key.split(".")[0] != "pooler"
    )
    mismatched = sorted(str(key) for key in loading.get("mismatched_keys") or ())
    if missing or mismatched:
        problem = f"no weights for {', '.join(missing[:4])}" if missing else ""
        problem += "; " if missing and mismatched else ""
        problem += f"wrong shapes for {', '.join(mismatched[:4])}" if mismatched else ""
        raise UserInputError(
            f"{what}: {info.model_folder / info.weights[0]}: {problem} ({info.architecture}); "
            "those layers would be random"
        )


@functools.cache
def _module_class() -> type:
    """HFTeacherModule, made on first use so that importing this file does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class HFTeacherModule(nn.Module):
        """teacher(input_ids: int64 N x L) -> logits N x K (classification) or the pooled
        sentence embedding N x H (embedding). The attention mask is input_ids != pad id; layer
        N's attention maps are the output of `attentions.N`."""

        def __init__(self, model: nn.Module, info: HFTeacherInfo) -> None:
            super().__init__()
            self.model = model
            self.info = info
            # Each layer's attention maps (N x heads x L x L) pass through attentions.N, so
            # that feature terms (attention-kl, attention-mse) name them as they name layers:
            # transformers' attention modules return tuples, which a hook cannot pair.
            self.attentions = nn.ModuleList(nn.Identity() for _ in range(info.num_layers))

        def attention_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
            if input_ids.ndim != 2 or input_ids.dtype not in (torch.int64, torch.int32):
                raise UserInputError(
                    f"teacher {self.info.path}: takes token ids (int64, N x L); got "
                    f"{input_ids.dtype} {tuple(input_ids.shape)}"
                )
            limit = self.info.max_positions
            if limit is not None and input_ids.shape[1] > limit:
                raise UserInputError(
                    f"teacher {self.info.path}: {input_ids.shape[1]} tokens per text; its "
                    f"position embeddings take at most {limit}"
                )
            return (input_ids != self.info.pad_token_id).to(torch.int64)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            mask = self.attention_mask(input_ids)
            # eager attention computes the maps in any case; returning them costs no compute
            outputs = self.model(input_ids=input_ids, attention_mask=mask, output_attentions=True)
            for tap, maps in zip(self.attentions, outputs.attentions or (), strict=False):
                tap(maps)
            if self.info.task_type == "classification":
                return outputs.logits
            return self.pool(outputs.last_hidden_state, mask)

        def features(self, input_ids: torch.Tensor) -> dict[str, Any]:
            """One pass with every intermediate: "hidden_states" (embedding output, then each
            layer's, N x L x H each), "attentions" (each layer's N x heads x L x L),
            "embeddings" (the embedding layer's output), "output" (what forward returns) and
            "attention_mask" (N x L, 1 at tokens, 0 at padding)."""
            mask = self.attention_mask(input_ids)
            outputs = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                output_hidden_states=True,
                output_attentions=True,
            )
            hidden_states = tuple(outputs.hidden_states)
            if self.info.task_type == "classification":
                output = outputs.logits
            else:
                output = self.pool(hidden_states[-1], mask)
            return {
                "hidden_states": hidden_states,
                "attentions": tuple(outputs.attentions),
                "embeddings": hidden_states[0],
                "output": output,
                "attention_mask": mask,
            }

        def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            """The sentence embedding as sentence-transformers computes it: mean or max over
            non-padding tokens, or the first token; L2-normalised when the teacher says so."""
            keep = mask.unsqueeze(-1).to(hidden.dtype)
            if self.info.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.info.pooling == "max":
                pooled = hidden.masked_fill(keep == 0, -1e9).max(dim=1).values
            else:
                pooled = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1e-9)
            return F.normalize(pooled, p=2, dim=1) if self.info.normalize else pooled

    return HFTeacherModule


def __getattr__(name: str) -> Any:
    """`from edgedistill.teachers.hf import HFTeacherModule` builds the class on first use."""
    if name == "HFTeacherModule":
        return _module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
