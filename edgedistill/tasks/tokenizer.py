"""Tokenizers: a folder of Hugging Face tokenizer files, loaded offline, turns texts into the
int64 token ids a text task's models take (padded or cut to the task's sequence length).

The folder is a Hugging Face teacher's own (hf:DIR), one the recipe names, or the WordPiece
vocabulary learned here from a task's train split (tasks/wordpiece.py). transformers (the `text`
extra) reads it; it is imported inside the functions that need it, with the hub offline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from edgedistill.errors import MissingExtraError, UserInputError
from edgedistill.inputs import Vocabulary

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
VOCABULARIES = ("vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
NO_MODEL_LIMIT = 10**9  # tokenizers without a declared length say ~1e30
HF_PREFIX = "hf:"  # a teacher source `hf:DIR`: a Hugging Face folder, its tokenizer with it


def is_hf_source(source: str | None) -> bool:
    return source is not None and source.startswith(HF_PREFIX)


def hf_folder(source: str, base_dir: Path) -> Path:
    """The folder `hf:PATH` names; a relative PATH starts at `base_dir`."""
    folder = Path(source.removeprefix(HF_PREFIX)).expanduser()
    return folder if folder.is_absolute() else base_dir / folder


def hf_model_folder(folder: Path) -> Path:
    """The folder holding a Hugging Face model's config and tokenizer: in a sentence-transformers
    folder, its Transformer module's (modules.json's first entry, e.g. 0_Transformer, or the
    folder itself); teachers/hf.py checks the rest of modules.json."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return folder
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return folder  # refused by the teacher's check, with the file named
    first = entries[0] if isinstance(entries, list) and entries else None
    path = first.get("path") if isinstance(first, dict) else None
    inner = folder / path if isinstance(path, str) and path else folder
    return inner if inner.is_dir() else folder


def check_tokenizer_folder(folder: Path, what: str = "--teacher") -> list[str]:
    """The tokenizer files of `folder`: tokenizer.json, or tokenizer_config.json with its
    vocabulary (vocab.txt, vocab.json + merges.txt, a sentencepiece model)."""
    if not folder.is_dir():
        raise UserInputError(f"{what}: tokenizer folder {folder} does not exist")
    has_config = (folder / TOKENIZER_CONFIG).is_file()
    if (folder / TOKENIZER_JSON).is_file():
        return [TOKENIZER_JSON] + ([TOKENIZER_CONFIG] if has_config else [])
    vocabularies = [name for name in VOCABULARIES if (folder / name).is_file()]
    if not vocabularies:
        raise not_a_model_folder(
            folder, TOKENIZER_JSON, what, f"or {TOKENIZER_CONFIG} with vocab.txt"
        )
    if not has_config:
        raise not_a_model_folder(
            folder, TOKENIZER_CONFIG, what, f"it says how to read {vocabularies[0]}"
        )
    if vocabularies[0] == "vocab.json" and not (folder / "merges.txt").is_file():
        raise not_a_model_folder(folder, "merges.txt", what, "a BPE vocab.json needs its merges")
    return [TOKENIZER_CONFIG, *vocabularies]


def not_a_model_folder(folder: Path, missing: str, what: str, detail: str = "") -> UserInputError:
    return UserInputError(
        f"{what}: {folder} is not a Hugging Face model folder: {missing} is missing"
        f"{f' ({detail})' if detail else ''}; it is read from this disk only, never downloaded"
    )


def tokenizer_pad_id(folder: Path) -> int | None:
    """The pad token's id as the tokenizer files state it, or None when they do not say."""
    tokenizer: dict = {}
    try:
        if (folder / TOKENIZER_JSON).is_file():
            tokenizer = json.loads((folder / TOKENIZER_JSON).read_text(encoding="utf-8"))
        padding = tokenizer.get("padding") or {}
        if isinstance(padding.get("pad_id"), int):
            return int(padding["pad_id"])
        name = _special_token(folder, "pad_token")
        if name is None:
            return None
        for token in tokenizer.get("added_tokens") or []:
            if token.get("content") == name and isinstance(token.get("id"), int):
                return int(token["id"])
        vocab = (tokenizer.get("model") or {}).get("vocab")
        if isinstance(vocab, dict) and isinstance(vocab.get(name), int):
            return int(vocab[name])
        if (folder / "vocab.txt").is_file():
            lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
            return lines.index(name) if name in lines else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return None


def _special_token(folder: Path, key: str) -> str | None:
    for name in (TOKENIZER_CONFIG, "special_tokens_map.json"):
        path = folder / name
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get(key)
            value = value.get("content") if isinstance(value, dict) else value
            if isinstance(value, str):
                return value
    return None


def import_transformers(purpose: str) -> ModuleType:
    """transformers, or a MissingExtraError naming the `text` extra."""
    try:
        import transformers
    except ImportError:
        raise MissingExtraError("transformers", "text", purpose) from None
    return transformers


@contextmanager
def offline(transformers: ModuleType) -> Iterator[None]:
    """While loading: the hub in offline mode (HF_HUB_OFFLINE=1: any request raises), and
    transformers' progress bars and load reports off (library code draws no progress)."""
    import huggingface_hub.constants as hub

    hub_offline = hub.HF_HUB_OFFLINE
    hf_logging = transformers.utils.logging
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hub.HF_HUB_OFFLINE = True
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = hub_offline
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@dataclass(frozen=True)
class TokenizedTexts:
    input_ids: torch.Tensor  # int64, N x max_length, padded with the tokenizer's pad id
    truncated: int  # texts longer than max_length tokens (special tokens counted), cut


def load_tokenizer(folder: str | Path, what: str = "--teacher"):
    """The folder's tokenizer, loaded offline by transformers' AutoTokenizer (no remote code);
    it must pad (the models mask padding by its id)."""
    folder = Path(folder).expanduser()
    check_tokenizer_folder(folder, what)
    transformers = import_transformers("tokenizing text")
    with offline(transformers):
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserInputError(
                f"{what}: {folder}: transformers cannot load the tokenizer offline: {first_line}"
            ) from None
    if tokenizer.pad_token_id is None:
        raise UserInputError(f"{what}: {folder}: the tokenizer has no pad token")
    return tokenizer


def vocabulary_of(tokenizer) -> Vocabulary:
    """The ids a loaded tokenizer produces: its size (added tokens included) and padding id."""
    return Vocabulary(size=len(tokenizer), pad_id=int(tokenizer.pad_token_id))


def tokenize(
    texts: Sequence[str], tokenizer_folder: str | Path, max_length: int, what: str = "--teacher"
) -> TokenizedTexts:
    """Token ids of `texts`, each padded or cut to `max_length`, with the folder's tokenizer
    loaded offline; counts the texts cut."""
    folder = Path(tokenizer_folder).expanduser()
    return encode(load_tokenizer(folder, what), texts, max_length, folder, what)


def encode(
    tokenizer, texts: Sequence[str], max_length: int, folder: Path, what: str = "--teacher"
) -> TokenizedTexts:
    """`tokenize` with a tokenizer loaded already (`load_tokenizer(folder)`): padding="max_length",
    truncation=True; the texts longer than `max_length` are counted."""
    import torch

    if max_length < 2:
        raise UserInputError(f"{what}: max_length {max_length}: at least 2 tokens are needed")
    declared = int(getattr(tokenizer, "model_max_length", NO_MODEL_LIMIT) or NO_MODEL_LIMIT)
    if declared < NO_MODEL_LIMIT and max_length > declared:
        raise UserInputError(
            f"{what}: max_length {max_length} is over the tokenizer's model_max_length "
            f"{declared} ({folder / TOKENIZER_CONFIG})"
        )
    if not texts:
        return TokenizedTexts(torch.zeros((0, max_length), dtype=torch.int64), 0)
    texts = list(texts)
    full = tokenizer(texts, truncation=False, verbose=False)["input_ids"]
    truncated = sum(len(ids) > max_length for ids in full)
    encoded = tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        verbose=False,
    )
    if truncated:
        log.info("%d of %d texts are longer than %d tokens; cut", truncated, len(texts), max_length)
    return TokenizedTexts(encoded["input_ids"].to(torch.int64), truncated)
